import 'reflect-metadata';
import { Column, Entity, JoinColumn, ManyToOne, OneToMany, PrimaryGeneratedColumn } from 'typeorm';

// Column types are spelled out, so nothing depends on emitted decorator metadata.

@Entity('user_account')
export class UserAccount {
  @PrimaryGeneratedColumn('increment')
  id!: number;

  @Column('text')
  name!: string;

  @Column('int', { default: 0 })
  balance!: number;

  @OneToMany(
    () => BlogPost,
    (post) => post.author,
  )
  posts!: BlogPost[];
}

@Entity('blog_post')
export class BlogPost {
  @PrimaryGeneratedColumn('increment')
  id!: number;

  @Column('text')
  title!: string;

  @ManyToOne(
    () => UserAccount,
    (user) => user.posts,
    { nullable: false },
  )
  @JoinColumn({ name: 'author_id' })
  author!: UserAccount;
}

export const ENTITIES = [UserAccount, BlogPost];

/** The schema, created with SQL (the DataSources run with `synchronize: false`). */
export const SCHEMA_SQL = `
  CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
  CREATE TABLE user_account (id serial PRIMARY KEY, name text NOT NULL, balance int NOT NULL DEFAULT 0);
  CREATE TABLE blog_post (
    id serial PRIMARY KEY,
    title text NOT NULL,
    author_id int NOT NULL REFERENCES user_account (id)
  );
  INSERT INTO user_account (name, balance) SELECT 'seed-' || i, i * 10 FROM generate_series(1, 5) i;
  INSERT INTO blog_post (title, author_id) SELECT 'post-' || i, 1 + i % 5 FROM generate_series(1, 10) i;
`;
