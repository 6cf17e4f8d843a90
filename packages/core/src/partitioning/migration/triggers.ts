/** The names of the migration's two triggers on the plain table (only pgpulse uses them). */
export const MIRROR_TRIGGER = 'pgpulse_partition_mirror';
export const TRUNCATE_TRIGGER = 'pgpulse_partition_no_truncate';
