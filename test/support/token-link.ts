// A rotation the old guess got wrong (2026-12-07), run the same on both backends (test/unit/aws-tokens.test.ts,
// test/unit/embedded-tokens.test.ts): a token expiring soon, another token of its device issued beside it (never
// expiring), then the first rotated with a successor that ends sooner than its overlap. `crs token list` guessed the
// token beside it as the replacement (a newer token of the device that outlives it); rotate links the successor.
type Run = (argv: string[]) => Promise<{ code: number; out: string; err: string }>;

export async function rotationBesideAnotherToken(run: Run) {
  const json = async (argv: string[]) => {
    const r = await run([...argv, '--json']);
    if (r.code !== 0) throw new Error(`crs token ${argv.join(' ')}: ${r.err}`);
    return JSON.parse(r.out) as { tokenId: string };
  };
  const rotated = await json(['issue', '--device', 'gw-7', '--kind', 'monitor', '--expires', '10d']);
  const beside = await json(['issue', '--device', 'gw-7', '--kind', 'monitor']);
  const successor = await json(['rotate', rotated.tokenId, '--overlap', '48h', '--expires', '1d']);
  return { rotated: rotated.tokenId, beside: beside.tokenId, successor: successor.tokenId };
}

/** The warning `crs token list` prints about one token (empty: none). */
export const warningOf = (out: string, tokenId: string): string =>
  out.split('\n').find((line) => line.startsWith(`warning: token ${tokenId} `)) ?? '';
