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

/** A token as `crs token issue --json` and `rotate --json` print it. */
interface Printed {
  token: string;
  tokenId: string;
  createdAt: string;
}

/**
 * The chains of rotations a review found refused with the direct link only (2026-12-07), run the same on both
 * backends: `ended`, a token rotated with --overlap 0 whose replacement was then revoked (the device was told to
 * install that one, and `crs token rotate` of it failed: "no active token"); `twice`, a token rotated with --overlap 0
 * whose replacement was rotated in turn the same way (it was told to install the revoked middle one).
 */
export async function rotationChains(run: Run) {
  const json = async (argv: string[]) => {
    const r = await run([...argv, '--json']);
    if (r.code !== 0) throw new Error(`crs token ${argv.join(' ')}: ${r.err}`);
    return JSON.parse(r.out) as Printed;
  };
  const revoke = async (tokenId: string) => {
    const r = await run(['revoke', tokenId]);
    if (r.code !== 0) throw new Error(`crs token revoke ${tokenId}: ${r.err}`);
  };
  const a = await json(['issue', '--device', 'gw-8', '--kind', 'monitor']);
  const b = await json(['rotate', a.tokenId, '--overlap', '0']);
  await revoke(b.tokenId);
  const a2 = await json(['issue', '--device', 'gw-9', '--kind', 'monitor']);
  const b2 = await json(['rotate', a2.tokenId, '--overlap', '0']);
  const c2 = await json(['rotate', b2.tokenId, '--overlap', '0']);
  return { ended: { a, b }, twice: { a: a2, b: b2, c: c2 } };
}

/** What a device still sending the first token of each chain of rotationChains is told (embedded commands). */
export function chainRefusals(
  t: Awaited<ReturnType<typeof rotationChains>>,
  where = '',
): { ended: string; twice: string } {
  const { b } = t.ended;
  const { b: b2, c } = t.twice;
  return {
    ended: `device token replaced at ${b.createdAt} by token ${b.tokenId} (crs token rotate), but no replacement is active any more (revoked or expired): issue the device a new one (crs token issue${where}) and configure it with that`,
    twice: `device token replaced at ${b2.createdAt} by token ${b2.tokenId} (crs token rotate), and that one replaced since: install token ${c.tokenId} on the device, the replacement active now (if it was lost, rotate that one: crs token rotate ${c.tokenId}${where})`,
  };
}
