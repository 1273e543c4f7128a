// `--help` as a user types it: every command answers with its usage on stdout and exit 0, and says what it needs.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from '#test/support/cli.ts';

const crs = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('crs --help', () => {
  it.each([['replay'], ['schema'], ['serve'], ['token'], ['silence'], ['outbox'], ['audit'], ['doctor']])(
    'crs %s --help prints its usage and exits 0',
    (command) => {
      const r = crs(command, '--help');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/usage:/);
      expect(r.stdout).toContain(`crs ${command}`);
    },
  );

  it('crs serve --help names the token kind (required) and where the AWS backend options are', () => {
    const out = crs('serve', '--help').stdout;
    expect(out).toContain('crs token issue --device DEVICE_ID --kind KIND');
    expect(out).toContain('crs serve --backend aws --help');
    expect(crs('serve', '--backend', 'aws', '--help').stdout).toContain('--endpoint URL');
  });
});
