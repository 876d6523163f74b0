/**
 * Constraint violations told apart by what PostgreSQL reports, not by its message text: the SQLSTATE
 * (23505 unique_violation, appendix A) and the constraint's name, which node-postgres and PGlite both
 * carry on their error (`code`, `constraint`). A name is the one PostgreSQL gives an inline `unique`
 * column: `<table>_<column>_key` (e.g. vms_name_key).
 */

const UNIQUE_VIOLATION = '23505';

/** Is `error` (or its cause, as a driver may wrap it) a unique violation of `constraint`? */
export function uniqueViolation(error: unknown, constraint: string): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const { code, constraint: name } = e as Error & { code?: unknown; constraint?: unknown };
    if (code === UNIQUE_VIOLATION) return name === constraint;
  }
  return false;
}
