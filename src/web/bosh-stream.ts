// A client stream over BOSH (XEP-0124, XEP-0206): the stream as a StreamTransport whose
// "connection" is a series of HTTP requests. Requests are taken in rid order (early ones wait
// within the window, a repeated rid gets its response again), up to `hold` are held open and
// answered when the server has something to send or `wait` runs out; with no request held for
// `inactivity` seconds (or past a pause), the connection counts as dropped (stream management
// may keep the session).
import type { ServerResponse } from 'node:http';
import type { Element } from '@xmpp/xml';
import { Element as XmlElement } from '@xmpp/xml';
import type { Logger } from '../log.js';
import { StreamError } from '../stream/errors.js';
import { logStreamClose, TransportState, type StreamTransport, type XmlStreamEvents } from '../stream/transport.js';
import { NS } from '../xml/namespaces.js';
import { NS_XBOSH, responseBody, type BoshRequest } from './bosh-body.js';
import { standalone } from './framing.js';

export interface BoshTimes {
  /** Seconds a request is held at most (the client's wait, capped). */
  wait: number;
  /** Requests held at once. */
  hold: number;
  /** Seconds without a request before the connection counts as dropped. */
  inactivity: number;
  /** Longest pause a client may ask for, seconds. */
  maxpause: number;
}

interface Held {
  rid: number;
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

/** Responses kept for a repeated rid: the last `requests` of them. */
type Sent = Map<number, string>;

export class BoshStream extends TransportState implements StreamTransport {
  readonly kind = 'bosh' as const;
  readonly sid: string;
  private lastRid: number;
  private readonly early = new Map<number, { request: BoshRequest; res: ServerResponse }>();
  private readonly held: Held[] = [];
  private readonly sent: Sent = new Map();
  private output: string[] = [];
  private flushScheduled = false;
  /** Attributes of the session creation response, until it is sent. */
  private creation: Record<string, string | number | undefined> | undefined;
  private readonly ackRequested: boolean;
  private inactivityTimer: NodeJS.Timeout | undefined;
  /** The terminating body once the stream is closing (answers every later request). */
  private terminal: string | undefined;

  constructor(
    sid: string,
    first: BoshRequest,
    private readonly times: BoshTimes,
    readonly encrypted: boolean,
    private readonly log: Logger,
    events: XmlStreamEvents,
    /** Called once when the stream is gone, for the endpoint's table of sessions. */
    private readonly onGone: (stream: BoshStream) => void,
  ) {
    super(events);
    this.sid = sid;
    this.lastRid = Number(first.attrs.rid) - 1;
    this.ackRequested = first.attrs.ack === '1';
    this.creation = {
      sid,
      wait: times.wait,
      hold: times.hold,
      requests: times.hold + 1,
      inactivity: times.inactivity,
      maxpause: times.maxpause,
      polling: 2,
      ver: '1.11',
      'xmpp:version': '1.0',
      'xmlns:xmpp': NS_XBOSH,
      'xmpp:restartlogic': 'true',
    };
  }

  get requests(): number {
    return this.times.hold + 1;
  }

  // --- StreamTransport ---------------------------------------------------------------------

  get tlsSocket(): undefined {
    return undefined;
  }

  open(attrs: Record<string, string>): void {
    if (this.creation) {
      this.creation.authid = attrs.id;
      this.creation.from = attrs.from;
    }
  }

  send(element: Element | string): void {
    if (this.closing) return;
    this.output.push(standalone(typeof element === 'string' ? element : element.toString()));
    this.scheduleFlush();
  }

  restart(): void {
    // The client asks for the restart with xmpp:restart (XEP-0206 §5): nothing to reset here.
  }

  close(error?: StreamError): void {
    if (this.closing) return;
    logStreamClose(this.log, error);
    const payload = this.output.join('') + (error ? standalone(error.toElement().toString()) : '');
    this.output = [];
    this.terminal = responseBody({ type: 'terminate', condition: error ? 'remote-stream-error' : undefined }, payload);
    this.closingSent = true;
    this.pendingError = error;
    this.events.closing?.();
    this.answerAllHeld();
    this.finish();
  }

  destroy(): void {
    if (this.ended) return;
    this.terminal ??= responseBody({ type: 'terminate', condition: 'item-not-found' });
    this.answerAllHeld();
    this.finish();
  }

  // --- requests ------------------------------------------------------------------------------

  /** A request of this session, with the body parsed: taken in rid order. */
  request(request: BoshRequest, res: ServerResponse): void {
    const rid = Number(request.attrs.rid);
    if (!Number.isSafeInteger(rid) || rid <= this.lastRid) {
      const again = this.sent.get(rid);
      if (again !== undefined) return void res.end(again);
      return this.fatal(res, 'item-not-found', `rid ${request.attrs.rid} is not in the window`);
    }
    if (rid > this.lastRid + this.requests) return this.fatal(res, 'item-not-found', `rid ${rid} is beyond the window`);
    if (this.early.has(rid)) return this.fatal(res, 'item-not-found', `rid ${rid} twice`);
    this.early.set(rid, { request, res });
    // An early request waits for the ones before it (held at most `wait` like any other).
    for (let next = this.early.get(this.lastRid + 1); next; next = this.early.get(this.lastRid + 1)) {
      this.early.delete(this.lastRid + 1);
      this.process(this.lastRid + 1, next.request, next.res);
    }
  }

  private process(rid: number, request: BoshRequest, res: ServerResponse): void {
    this.lastRid = rid;
    this.lastReceived = Date.now();
    clearTimeout(this.inactivityTimer);
    const { attrs, children } = request;
    const ack = Number(attrs.ack);
    if (Number.isSafeInteger(ack)) for (const r of this.sent.keys()) if (r <= ack) this.sent.delete(r);
    if (this.terminal !== undefined) return void res.end(this.terminal);
    try {
      if (this.creation && this.creation.authid === undefined) this.header(attrs);
      else if (attrs['xmpp:restart'] === 'true') this.header(attrs);
      for (const el of children) {
        if (this.closing) break;
        this.events.element(el);
      }
    } catch (err) {
      if (!(err instanceof StreamError)) this.log.error({ err }, 'stream handler failed');
      this.close(err instanceof StreamError ? err : new StreamError('internal-server-error'));
    }
    if (attrs.type === 'terminate' && !this.closing) this.close();
    if (this.terminal !== undefined) return void res.end(this.terminal);
    const pause = Number(attrs.pause);
    if (attrs.pause !== undefined && Number.isFinite(pause) && pause > 0) {
      // Every held request is answered; the session waits up to the pause for the next one.
      this.hold(rid, res);
      this.answerAllHeld();
      return this.armInactivity(Math.min(pause, this.times.maxpause));
    }
    this.hold(rid, res);
  }

  /** The stream (re)starts: the body's to, xml:lang and xmpp:version as a stream header. */
  private header(attrs: Record<string, string | undefined>): void {
    const header = new XmlElement('stream:stream', {
      xmlns: NS.CLIENT,
      'xmlns:stream': NS.STREAM,
      to: attrs.to,
      version: attrs['xmpp:version'] ?? '1.0',
      'xml:lang': attrs['xml:lang'],
    });
    this.events.header(header);
  }

  private hold(rid: number, res: ServerResponse): void {
    const entry: Held = { rid, res, timer: setTimeout(() => this.answer(entry), this.times.wait * 1000) };
    entry.timer.unref();
    res.once('close', () => {
      // The client gave up on it (or it was answered): no longer held.
      const i = this.held.indexOf(entry);
      if (i === -1) return;
      clearTimeout(entry.timer);
      this.held.splice(i, 1);
      if (this.held.length === 0) this.armInactivity(this.times.inactivity);
    });
    this.held.push(entry);
    // More than `hold` waiting: the oldest is answered (with what there is, or empty).
    while (this.held.length > this.times.hold) this.answer(this.held[0]!);
    if (this.output.length > 0) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything written in one tick goes out in one response.
    process.nextTick(() => {
      this.flushScheduled = false;
      if (this.output.length > 0 && this.held.length > 0) this.answer(this.held[0]!);
    });
  }

  /** Answers a held request with the output waiting (or an empty body). */
  private answer(entry: Held): void {
    const i = this.held.indexOf(entry);
    if (i === -1) return;
    this.held.splice(i, 1);
    clearTimeout(entry.timer);
    const payload = this.output.join('');
    this.output = [];
    const attrs = this.creation ?? {};
    this.creation = undefined;
    // XEP-0124 §9.1: with acks asked for, a response to an older request says how far we are.
    if (this.ackRequested && entry.rid !== this.lastRid) attrs.ack = this.lastRid;
    const body = responseBody(attrs, payload);
    this.sent.set(entry.rid, body);
    for (const r of this.sent.keys()) if (r <= entry.rid - this.requests) this.sent.delete(r);
    entry.res.end(body);
    if (this.held.length === 0) this.armInactivity(this.times.inactivity);
  }

  private answerAllHeld(): void {
    for (const entry of [...this.held]) {
      if (this.terminal !== undefined) {
        this.held.splice(this.held.indexOf(entry), 1);
        clearTimeout(entry.timer);
        entry.res.end(this.terminal);
      } else this.answer(entry);
    }
    for (const { res } of this.early.values()) res.end(this.terminal ?? responseBody({}));
    this.early.clear();
  }

  private armInactivity(seconds: number): void {
    clearTimeout(this.inactivityTimer);
    if (this.ended) return;
    this.inactivityTimer = setTimeout(() => {
      if (this.held.length > 0) return;
      this.log.info('BOSH client inactive: connection dropped');
      this.destroy();
    }, seconds * 1000);
    this.inactivityTimer.unref();
  }

  /** A binding error: this request and the session end (XEP-0124 §17). */
  private fatal(res: ServerResponse, condition: string, text: string): void {
    this.log.info({ condition, text }, 'BOSH request refused');
    res.end(responseBody({ type: 'terminate', condition }));
    this.destroy();
  }

  protected override finish(): void {
    if (this.ended) return;
    clearTimeout(this.inactivityTimer);
    this.onGone(this);
    super.finish();
  }
}
