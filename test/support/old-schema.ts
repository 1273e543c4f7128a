// Databases as earlier versions of crs serve left them, made from today's by taking off what came later.
import Database from 'better-sqlite3';

/**
 * The database file as version 6 had it: no columns of the board's list (version 7), no lane starts (version 8), no
 * members of ward alerts (version 9).
 */
export function asVersion6(file: string): void {
  const raw = new Database(file);
  try {
    raw.exec(`DROP TABLE lane_starts;
      DROP TABLE stale_feed_members;
      DROP INDEX patients_ended;
      ALTER TABLE patients DROP COLUMN monitoring_ended_at;
      ALTER TABLE patients DROP COLUMN grade;`);
    raw.pragma('user_version = 6');
  } finally {
    raw.close();
  }
}
