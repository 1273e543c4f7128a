// Runs before each file of the shared-workers project (vitest.config.ts), whose files share worker processes: the
// project's own modules are evaluated afresh for each file, as in a worker of its own (a Lambda handler reads its
// environment when imported), while the packages under node_modules, which Node loads and caches itself, are loaded
// once per worker.
import { vi } from 'vitest';

vi.resetModules();
