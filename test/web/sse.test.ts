import { describe, expect, it } from 'vitest';
import { SseParser } from '../../src/web/client/sse.js';

describe('SSE parser', () => {
  it('parses events split across arbitrary chunks', () => {
    const text = ': hello\n\ndata: {"a":1}\n\nevent: flow\ndata: {"b":2}\nid: 7\n\n';
    for (let size = 1; size <= text.length; size++) {
      const p = new SseParser();
      const evs = [];
      for (let i = 0; i < text.length; i += size) evs.push(...p.push(text.slice(i, i + size)));
      expect(evs).toEqual([
        { event: 'message', data: '{"a":1}', id: '' },
        { event: 'flow', data: '{"b":2}', id: '7' },
      ]);
    }
  });
  it('accepts CRLF and CR line endings, including a CRLF split between chunks', () => {
    const p = new SseParser();
    expect(p.push('data: x\r')).toEqual([]);
    expect(p.push('\n\r\n')).toEqual([{ event: 'message', data: 'x', id: '' }]);
    // a CR at the end of a chunk may be half of a CRLF: the event completes with the next chunk
    expect(p.push('data: y\r\r')).toEqual([]);
    expect(p.push('data: z\n\n')).toEqual([
      { event: 'message', data: 'y', id: '' },
      { event: 'message', data: 'z', id: '' },
    ]);
  });
  it('joins multi-line data and strips one leading space only', () => {
    const p = new SseParser();
    expect(p.push('data:  two\ndata:three\n\n')).toEqual([{ event: 'message', data: ' two\nthree', id: '' }]);
  });
  it('ignores comments, unknown fields and events without data; reads retry', () => {
    const p = new SseParser();
    expect(p.push(': ping\nfoo: bar\nevent: x\n\nretry: 2500\n\n')).toEqual([]);
    expect(p.retry).toBe(2500);
    expect(p.push('data\n\n')).toEqual([{ event: 'message', data: '', id: '' }]);
  });
  it('does not dispatch an unterminated event', () => {
    const p = new SseParser();
    expect(p.push('data: partial\n')).toEqual([]);
    expect(p.push('\n')).toHaveLength(1);
  });
});
