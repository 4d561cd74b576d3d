import { describe, expect, it } from 'vitest';
import { bitRateText, bytesText, countText, durationText, msText, percentText, ppsText, timeText } from '../../src/cli/units.js';

describe('CLI units', () => {
  it('writes bytes in IEC units, three digits at most', () => {
    expect(bytesText(0)).toBe('0 B');
    expect(bytesText(1023)).toBe('1023 B');
    expect(bytesText(1024)).toBe('1 KiB');
    expect(bytesText(1536)).toBe('1.5 KiB');
    expect(bytesText(192_000)).toBe('188 KiB');
    expect(bytesText(12.3 * 1024 ** 2)).toBe('12.3 MiB');
    expect(bytesText(1024 ** 2 - 1)).toBe('1 MiB');
    expect(bytesText(5 * 1024 ** 4)).toBe('5 TiB');
  });

  it('writes counts and rates in SI units', () => {
    expect(countText(950)).toBe('950');
    expect(countText(1856)).toBe('1.86k');
    expect(countText(65_536)).toBe('65.5k');
    expect(countText(262_144)).toBe('262k');
    expect(countText(999_999)).toBe('1M');
    expect(countText(63.84999)).toBe('63.8');
    expect(ppsText(0.4)).toBe('0.4 pps');
    expect(bitRateText(0)).toBe('0 bit/s');
    expect(bitRateText(51_200)).toBe('51.2 kbit/s');
    expect(bitRateText(9.41e9)).toBe('9.41 Gbit/s');
  });

  it('rounds measured times and fractions', () => {
    expect(msText(8.545849999998609)).toBe('8.55 ms');
    expect(msText(0.115379)).toBe('0.12 ms');
    expect(msText(1500)).toBe('1.5 s');
    expect(percentText(0.0009765625)).toBe('0.098%');
    expect(percentText(0.5)).toBe('50%');
    expect(percentText(0)).toBe('0%');
    expect(percentText(1e-6)).toBe('<0.01%');
  });

  it('writes durations like 3m12s', () => {
    expect(durationText(0.4)).toBe('0s');
    expect(durationText(4.9)).toBe('4s');
    expect(durationText(192)).toBe('3m12s');
    expect(durationText(180)).toBe('3m');
    expect(durationText(3600)).toBe('1h');
    expect(durationText(7500)).toBe('2h05m');
    expect(durationText(3 * 86_400 + 4 * 3600 + 5)).toBe('3d4h');
  });

  it('writes times to the second in UTC', () => {
    expect(timeText('2026-11-29T23:09:34.760Z')).toBe('2026-11-29 23:09:34Z');
    expect(timeText(null)).toBe('-');
  });
});
