// The outbox lanes of crs serve, by name: each sink (sinks.ts, the pager in paging.ts) takes its name from here, and
// `crs outbox retry --sink` checks against it (a misspelt lane would retry nothing).
export const EMBEDDED_LANES = ['stdout', 'pager', 'board', 'webhook'] as const;

export type LaneName = (typeof EMBEDDED_LANES)[number];

export const isLaneName = (s: string): s is LaneName => (EMBEDDED_LANES as readonly string[]).includes(s);
