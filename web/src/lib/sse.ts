// A Server-Sent Events parser (the WHATWG event-stream format): fed text as it arrives, it yields
// complete events. Used with fetch() so the stream works with the session cookie and a key alike.
export interface SseEvent {
  readonly id?: string;
  readonly event: string;
  readonly data: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  /** The last id seen (what Last-Event-ID resumes from). */
  lastId: string | undefined;

  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/);
      if (nl < 0) break;
      const line = this.buffer.slice(0, nl);
      const len = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      this.buffer = this.buffer.slice(nl + len);
      if (line === '') {
        if (this.data.length > 0) {
          out.push({
            ...(this.id !== undefined ? { id: this.id } : {}),
            event: this.event || 'message',
            data: this.data.join('\n'),
          });
        }
        this.data = [];
        this.event = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
      else if (field === 'id' && !value.includes('\u0000')) {
        this.id = value;
        this.lastId = value;
      }
    }
    return out;
  }
}
