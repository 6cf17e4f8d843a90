/** The drizzle schema the tests share, and the SQL that creates it (tests do not use drizzle-kit). */
import { relations } from 'drizzle-orm';
import { integer, pgMaterializedView, pgTable, serial, text } from 'drizzle-orm/pg-core';

// Every table name starts with `dz_`, so a statement that touched them is easy to find in
// pg_stat_statements (see observe.ts).
export const users = pgTable('dz_users', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  email: text('email'),
});

export const posts = pgTable('dz_posts', {
  id: serial('id').primaryKey(),
  userId: integer('user_id')
    .notNull()
    .references(() => users.id),
  title: text('title').notNull(),
});

export const postCounts = pgMaterializedView('dz_post_counts', {
  userId: integer('user_id').notNull(),
  n: integer('n').notNull(),
}).existing();

export const usersRelations = relations(users, ({ many }) => ({ posts: many(posts) }));
export const postsRelations = relations(posts, ({ one }) => ({
  author: one(users, { fields: [posts.userId], references: [users.id] }),
}));

export const schema = { users, posts, postCounts, usersRelations, postsRelations };

export const DDL = `
  CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
  CREATE TABLE dz_users (id serial PRIMARY KEY, name text NOT NULL, email text);
  CREATE TABLE dz_posts (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES dz_users (id), title text NOT NULL);
  INSERT INTO dz_users (name, email) VALUES ('alice', 'alice@example.com'), ('bob', NULL), ('carol', 'carol@example.com');
  INSERT INTO dz_posts (user_id, title) VALUES (1, 'a1'), (1, 'a2'), (2, 'b1');
  CREATE MATERIALIZED VIEW dz_post_counts AS
    SELECT user_id, count(*)::int AS n FROM dz_posts GROUP BY user_id;
`;
