/**
 * An XADD whose RESP text is built by flowscope rather than by ioredis.
 *
 * ioredis turns every argument of every command into its own RESP chunk; for
 * a 17-field stream entry that is ~40 conversions and length computations per
 * record. The sink already holds each record as the RESP text of its fields
 * (entry-encoding.ts), so the command only prepends the XADD header. The key
 * stays an ordinary argument: ioredis still routes the command to the right
 * cluster node by it, and follows MOVED/ASK redirections as usual.
 */
import { Command } from 'ioredis';
import { bulk } from './entry-encoding.js';

export class PreEncodedXadd extends Command {
  constructor(
    key: string,
    private readonly resp: string,
  ) {
    super('xadd', [key], { replyEncoding: 'utf8' });
  }

  override toWritable(): string {
    return this.resp;
  }
}

/** The constant part of a stream's XADD header: key and MAXLEN ~ N. */
export function xaddPrefix(key: string, maxLen: number): string {
  return `$4\r\nXADD\r\n${bulk(key)}$6\r\nMAXLEN\r\n$1\r\n~\r\n${bulk(String(maxLen))}`;
}

/** The whole RESP text of one XADD: 6 header arguments plus the field/value pairs. */
export function xaddText(prefix: string, id: string, fields: string, pairs: number): string {
  return `*${6 + 2 * pairs}\r\n${prefix}$${id.length}\r\n${id}\r\n${fields}`;
}
