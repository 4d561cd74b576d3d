import { describe, expect, it } from 'vitest';
import {
  endpoint, exact, formatBitRate, formatByteRate, formatBytes, formatClock, formatCount, formatDuration, formatMs,
  formatPercent, formatPps, portName, si,
} from '../../src/web/client/format.js';

describe('si units', () => {
  it('keeps small integers exact', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(950)).toBe('950 B');
    expect(formatPps(999)).toBe('999 pps');
    expect(formatCount(7)).toBe('7');
  });
  it('uses three significant digits and SI prefixes (powers of 1000)', () => {
    expect(formatBytes(1234)).toBe('1.23 kB');
    expect(formatBytes(12_345)).toBe('12.3 kB');
    expect(formatBytes(123_456)).toBe('123 kB');
    expect(formatBytes(1_000_000)).toBe('1 MB');
    expect(formatBytes(98_765_432)).toBe('98.8 MB');
    expect(formatBytes(5.5e12)).toBe('5.5 TB');
    expect(formatByteRate(1500)).toBe('1.5 kB/s');
    expect(formatBitRate(9.41e9)).toBe('9.41 Gb/s');
    expect(formatPps(4_560_000)).toBe('4.56 Mpps');
    expect(formatPps(1234.5)).toBe('1.23 kpps');
    expect(formatCount(1234)).toBe('1.23 k');
    expect(formatCount(2_000_000)).toBe('2 M');
  });
  it('rounds across a prefix boundary without showing 1000', () => {
    expect(formatBytes(999_600)).toBe('1 MB');
    expect(formatBytes(999_499)).toBe('999 kB');
    expect(si(999.7, 'B')).toBe('1 kB');
  });
  it('formats fractions below one unit', () => {
    expect(formatPps(0.5)).toBe('0.5 pps');
    expect(formatByteRate(12.25)).toBe('12.3 B/s');
  });
  it('handles negatives and non-finite values', () => {
    expect(formatBytes(-2048)).toBe('-2.05 kB');
    expect(formatBytes(Number.NaN)).toBe('–');
    expect(formatBytes(Infinity)).toBe('–');
  });
});

describe('exact values for title attributes', () => {
  it('prints every digit with separators', () => {
    expect(exact(1234567, 'B')).toBe('1,234,567 B');
    expect(exact(0)).toBe('0');
    expect(exact(1.23456, 'pps')).toBe('1.235 pps');
    expect(exact(Number.NaN)).toBe('');
  });
});

describe('percent', () => {
  it('scales precision with size', () => {
    expect(formatPercent(0)).toBe('0%');
    expect(formatPercent(1)).toBe('100%');
    expect(formatPercent(0.5343)).toBe('53.4%');
    expect(formatPercent(0.0393)).toBe('3.93%');
    expect(formatPercent(0.03)).toBe('3%');
    expect(formatPercent(0.0004)).toBe('0.04%');
    expect(formatPercent(0.00001)).toBe('<0.01%');
  });
});

describe('durations and times', () => {
  it('formats uptimes', () => {
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(725)).toBe('12m 5s');
    expect(formatDuration(3725)).toBe('1h 2m');
    expect(formatDuration(2 * 86400 + 5 * 3600 + 7)).toBe('2d 5h');
    expect(formatDuration(-1)).toBe('–');
  });
  it('formats poll durations', () => {
    expect(formatMs(0.42)).toBe('0.42 ms');
    expect(formatMs(12.34)).toBe('12.3 ms');
    expect(formatMs(1234)).toBe('1.23 s');
  });
  it('formats clock times and rejects invalid ones', () => {
    const d = new Date(2024, 4, 1, 9, 5, 7);
    expect(formatClock(d)).toBe('09:05:07');
    expect(formatClock(d.getTime())).toBe('09:05:07');
    expect(formatClock('not a time')).toBe('–');
  });
});

describe('endpoints', () => {
  it('brackets IPv6 addresses with a port and omits port 0', () => {
    expect(endpoint('10.0.0.1', 53)).toBe('10.0.0.1:53');
    expect(endpoint('fd00::1', 443)).toBe('[fd00::1]:443');
    expect(endpoint('10.0.0.1', 0)).toBe('10.0.0.1');
    expect(endpoint('fd00::1', 0)).toBe('fd00::1');
  });
  it('names well-known ports', () => {
    expect(portName(53)).toBe('dns');
    expect(portName(9797)).toBe('flowscope');
    expect(portName(40000)).toBeUndefined();
  });
});
