// The AWS stale-feed sweep's stores in memory: patients' states (what `feeds` yields and `load` reads), the alerts
// in force (the pages table's #stale-feeds partition) and the alerts the pager was handed.
import type { SweepDeps } from '../../shared/adapters/aws/stale-feed-sweep.ts';
import type { InForce } from '../../shared/app/stale-feed.ts';
import type { AlertInput } from '../../shared/domain/paging.ts';
import { DEFAULT_PAGING } from '../../shared/domain/paging.ts';
import type { PatientState } from '../../shared/domain/state.ts';

export function sweepFakes(enrolledAt = 0) {
  const states = new Map<string, PatientState>();
  const inForce = new Map<string, InForce>();
  const alerts: AlertInput[] = [];
  /** Records in force the store cannot read (by key, with why). */
  const unreadable: { key: string; reason: string }[] = [];
  const deps = (): SweepDeps => ({
    states: {
      feeds: async function* () {
        for (const [patientId, s] of states) yield { patientId, since: s.lastMonitorAt ?? enrolledAt };
      },
      load: async (id: string) => (states.has(id) ? { state: states.get(id)!, version: 1 } : undefined),
    },
    pages: {
      staleFeedAlerts: async () => ({ alerts: new Map(inForce), unreadable: [...unreadable] }),
      setStaleFeedAlert: async (p, alertId, since, resumed = []) =>
        void inForce.set(p, { alertId, since, ...(resumed.length > 0 ? { resumed } : {}) }),
      clearStaleFeedAlert: async (p) => void inForce.delete(p),
    },
    pager: { onAlert: async (a: AlertInput) => void alerts.push(a) },
    config: DEFAULT_PAGING,
    timeZone: 'UTC',
  });
  return { states, inForce, alerts, unreadable, deps };
}
