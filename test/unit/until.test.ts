import { describe, expect, it } from 'vitest';
import { until } from '../support/until.ts';

describe("until (the tests' wait on a signal)", () => {
  it('waits past undefined, null and false, and gives the first other value', async () => {
    const answers = [undefined, null, false, null, 'there'];
    let asked = 0;
    expect(await until(() => answers[asked++], 'the value')).toBe('there');
    expect(asked).toBe(5);
  });

  it('takes 0 and the empty string for answers', async () => {
    expect(await until(() => 0)).toBe(0);
    expect(await until(() => '')).toBe('');
  });

  it('fails naming what it waited for when the probe keeps giving null', async () => {
    await expect(until(() => null, 'the focus given back', 30)).rejects.toThrow(
      'timed out waiting for the focus given back',
    );
  });
});
