// The domain is pure: nothing under shared/domain imports an SDK, a file system, a network or reads a clock.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DOMAIN = new URL('../../shared/domain', import.meta.url).pathname;
const files = readdirSync(DOMAIN).filter((f) => f.endsWith('.ts'));

describe('the domain', () => {
  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it.each(files)('%s imports only zod and other domain files', (file) => {
    const source = readFileSync(join(DOMAIN, file), 'utf8');
    const imports = [
      ...source.matchAll(
        /(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm,
      ),
    ].map((m) => m[1] ?? m[2] ?? m[3]);
    for (const spec of imports) expect(/^zod(\/[\w./-]+)?$/.test(spec!) || /^\.\/[\w-]+\.ts$/.test(spec!)).toBe(true);
    expect(source).not.toMatch(/\brequire\(/);
  });

  it.each(files)('%s reads no clock and no environment', (file) => {
    const source = readFileSync(join(DOMAIN, file), 'utf8');
    expect(source).not.toMatch(
      /Date\.now\(|new Date\(\)|performance\.now|process\.|setTimeout|setInterval|Math\.random/,
    );
  });
});
