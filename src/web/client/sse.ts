/**
 * An incremental Server-Sent Events parser (WHATWG HTML "event stream
 * interpretation"). The dashboard reads /api/v1/flows/stream with fetch()
 * rather than EventSource so that it can send an Authorization header; this
 * turns the streamed text back into events. Pure, unit-tested.
 */

export interface SseEvent {
  /** "message" unless the server named it */
  event: string;
  data: string;
  /** last event id seen so far on the stream */
  id: string;
}

export class SseParser {
  private buf = '';
  private data: string[] = [];
  private event = '';
  private lastId = '';
  private sawData = false;
  /** reconnection delay asked for by the server ("retry:"), in ms */
  retry: number | undefined;

  /** Feeds a chunk of the stream; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buf += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // a CR at the very end may be the first half of CRLF: wait for more
      if (c === 13 && i === this.buf.length - 1) break;
      const line = this.buf.slice(start, i);
      if (c === 13 && this.buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (!this.sawData) {
        this.event = '';
        return undefined;
      }
      const ev = { event: this.event || 'message', data: this.data.join('\n'), id: this.lastId };
      this.data = [];
      this.event = '';
      this.sawData = false;
      return ev;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.sawData = true;
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }
}
