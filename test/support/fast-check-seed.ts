// Every property's draw from one seed when FC_SEED is set (.ci/run sets it): CI then runs the same cases each
// time, so a red run is reproducible and never the luck of a draw. Unset (a developer's run, a hunt with raised
// run counts), each run draws afresh and explores; a failure prints its seed and path to replay it.
import fc from 'fast-check';

const seed = process.env.FC_SEED;
if (seed !== undefined && seed !== '') fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: Number(seed) });
