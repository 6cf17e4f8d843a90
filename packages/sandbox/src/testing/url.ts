/**
 * The object form (`{ host, port, user, password, database }`) of a sandbox node's URL, for
 * tests of the configuration forms that are not a URL.
 */
export function objectForm(url: string): {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
} {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
  };
}
