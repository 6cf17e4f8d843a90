import type { PartialPredicate, SortDirection } from '../sql/index.js';

export type IndexPriority = 1 | 2 | 3 | 4 | 5;
/** 'statement': adviseQuery's what-if verified advice for one statement. */
export type RecommendationSource = 'slow-query' | 'foreign-key' | 'statement';

/** A missing index, ready to review or to hand to applyRecommendations. */
export interface IndexRecommendation {
  readonly schema: string;
  readonly table: string;
  /** Plain columns, from WHERE / JOIN conditions (or ORDER BY under a LIMIT) of the plans. */
  readonly columns: readonly string[];
  /** Per column, parallel to `columns`, when a sort finding gave directions. */
  readonly order?: readonly SortDirection[];
  /**
   * The predicate of a partial index, as SQL: `"status" = 'open'`. Only proposed from an
   * unredacted plan whose Filter has `column = constant` on a low-cardinality column (see
   * partial.ts). `predicate` holds the same in structured form; applyRecommendations builds
   * the DDL from `predicate` and refuses a `where` that does not match it.
   */
  readonly where?: string;
  readonly predicate?: PartialPredicate;
  /** INCLUDE columns (an index-only scan for the statement). */
  readonly include?: readonly string[];
  /** The index name the statement uses. */
  readonly name: string;
  readonly reason: string;
  /** 5 is the most valuable; applyRecommendations builds those at or above its threshold. */
  readonly priority: IndexPriority;
  readonly estimatedBenefit?: string;
  /**
   * `CREATE INDEX CONCURRENTLY IF NOT EXISTS "name" ON "schema"."table" USING btree (...)`;
   * for a partitioned table the `ON ONLY` statement for the parent (the partitions are built
   * concurrently and attached by applyRecommendations).
   */
  readonly sql: string;
  readonly source: RecommendationSource;
  /** The table is partitioned (see `sql`). */
  readonly partitioned?: boolean;
  /** The slow statements behind it, normalized (literals as `$n`; at most three). */
  readonly queries?: readonly string[];
}

export function clampPriority(n: number): IndexPriority {
  return Math.min(5, Math.max(1, Math.round(n))) as IndexPriority;
}

/** A whole number with thousands separators, for the reasons and benefits. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
