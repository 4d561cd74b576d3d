/**
 * GET /api/v1/interfaces/history: what each interface counted per step, for
 * the dashboard's charts at page load (engine/interface-history.ts). Counts,
 * not rates: a step's rate is its count / stepMs, and a sum over steps is
 * exact.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { DURATION_PATTERN, formatDuration, parseDuration } from '../../flow/duration.js';
import type { InterfaceHistory } from '../../engine/interface-history.js';
import { BadRequestError } from '../errors.js';
import type { InterfaceHistoryService } from '../queries.js';
import { errorSchema } from '../schemas.js';

export const DEFAULT_HISTORY_WINDOW = '15m';
/** most steps an answer may hold per interface */
export const MAX_HISTORY_POINTS = 5000;
/** steps a default step aims at, at most */
const DEFAULT_POINTS = 900;
const NICE_STEPS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);

export const historyQuerySchema = Type.Object(
  {
    window: Type.Optional(
      Type.String({ pattern: DURATION_PATTERN, maxLength: 32, default: DEFAULT_HISTORY_WINDOW, description: 'how far back, up to 24h: 15m, 1h, 24h' }),
    ),
    step: Type.Optional(
      Type.String({
        pattern: DURATION_PATTERN,
        maxLength: 32,
        description: 'the steps counts are summed over: a multiple of the poll interval within the last hour, or whole minutes; default: about 900 steps',
      }),
    ),
    iface: Type.Optional(Type.String({ pattern: '^[^\\s/:]{1,15}$', description: 'one interface, by name' })),
  },
  { additionalProperties: false },
);
type HistoryQuery = Static<typeof historyQuerySchema> & { window: string };

const counts = (description: string) => Type.Array(Type.Number(), { description });

export const interfaceSeriesSchema = Type.Object({
  iface: Type.String(),
  ifindex: Type.Integer(),
  t: Type.Array(Type.Number(), { description: 'start of each step, epoch ms, oldest first' }),
  rxPackets: counts('packets received in each step'),
  rxBytes: counts('bytes received in each step'),
  txPackets: counts('packets sent in each step'),
  txBytes: counts('bytes sent in each step'),
});

export const historyAnswerSchema = Type.Object({
  node: Type.String(),
  pollIntervalMs: Type.Number(),
  stepMs: Type.Number({ description: 'length of each step: a rate is a count / stepMs' }),
  from: Type.Number({ description: 'start of the window, epoch ms (a multiple of stepMs)' }),
  to: Type.Number({ description: 'end of the window, epoch ms: the start of the step in progress, which is not listed' }),
  interfaces: Type.Array(interfaceSeriesSchema),
  interfacesOmitted: Type.Integer({ description: 'interfaces attached now that have no history: every history slot is in use' }),
});
export type HistoryAnswer = Static<typeof historyAnswerSchema>;

/** The step of a query: asked for, or the first round one that gives at most DEFAULT_POINTS steps. 400 when it cannot be served. */
export function historyStep(history: InterfaceHistory, windowMs: number, stepText: string | undefined): number {
  const pollMs = history.config.pollIntervalMs;
  const minuteMs = history.config.coarseStepMs;
  const fineSpanMs = history.fineSpanMs;
  const poll = formatDuration(pollMs);
  const minute = formatDuration(minuteMs);
  const needMinutes = windowMs > fineSpanMs;
  if (stepText === undefined) {
    const target = Math.max(pollMs, windowMs / DEFAULT_POINTS);
    const fits = (s: number) => s >= target && (s % minuteMs === 0 || (!needMinutes && s % pollMs === 0));
    return NICE_STEPS_MS.find(fits) ?? (needMinutes ? Math.ceil(target / minuteMs) * minuteMs : Math.ceil(target / pollMs) * pollMs);
  }
  const stepMs = parseDuration(stepText);
  if (stepMs === undefined || stepMs <= 0) throw new BadRequestError(`step: "${stepText}" is not a positive duration; use e.g. ${poll}, 10s, ${minute}, 5m`);
  if (stepMs % minuteMs !== 0) {
    if (stepMs % pollMs !== 0) {
      throw new BadRequestError(`step: ${stepText} is not a multiple of the poll interval (${poll}) nor of ${minute}; use e.g. ${formatDuration(pollMs * 5)} or ${minute}`);
    }
    if (needMinutes) {
      throw new BadRequestError(
        `step: ${stepText} needs a window of at most ${formatDuration(fineSpanMs)} (the poll-resolution history); for a longer window use whole minutes: ${minute}, 5m, …`,
      );
    }
  }
  if (stepMs > windowMs) throw new BadRequestError(`step: ${stepText} is longer than the window; use at most the window`);
  const points = Math.ceil(windowMs / stepMs);
  if (points > MAX_HISTORY_POINTS) {
    throw new BadRequestError(`step: ${stepText} gives ${points} steps in the window, more than ${MAX_HISTORY_POINTS}; use a step of at least ${formatDuration(Math.ceil(windowMs / MAX_HISTORY_POINTS / 1000) * 1000)}`);
  }
  return stepMs;
}

export function historyRoute(app: FastifyInstance, service: InterfaceHistoryService | undefined, clock: () => number): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/interfaces/history',
    {
      schema: {
        summary: 'Per-interface counts per step over a window (up to 24 h): rates are count / stepMs',
        tags: ['agent'],
        querystring: historyQuerySchema,
        response: { 200: historyAnswerSchema, 400: errorSchema, 501: errorSchema },
      },
    },
    async (request, reply) => {
      const { window, step, iface } = request.query as HistoryQuery;
      if (!service) {
        return reply.code(501).send({
          error: 'not_implemented',
          message: 'this server keeps no interface history: each agent keeps its own; ask the node\'s agent for /api/v1/interfaces/history',
        });
      }
      const { history } = service;
      const maxMs = history.config.coarseSpanMs;
      const windowMs = parseDuration(window);
      if (windowMs === undefined || windowMs <= 0) throw new BadRequestError(`window: "${window}" is not a positive duration; use e.g. 15m, 1h, 24h`);
      if (windowMs > maxMs) throw new BadRequestError(`window: ${window} is longer than the ${formatDuration(maxMs)} of history this agent keeps; use at most ${formatDuration(maxMs)}`);
      if (windowMs < history.config.pollIntervalMs) {
        throw new BadRequestError(`window: ${window} is shorter than the poll interval (${formatDuration(history.config.pollIntervalMs)}); use at least that`);
      }
      const stepMs = historyStep(history, windowMs, step);
      const to = Math.floor((history.lastPollMs ?? clock()) / stepMs) * stepMs;
      const from = to - Math.ceil(windowMs / stepMs) * stepMs;
      const answer: HistoryAnswer = {
        node: service.node,
        pollIntervalMs: history.config.pollIntervalMs,
        stepMs,
        from,
        to,
        interfaces: history.series(from, to, stepMs, iface),
        interfacesOmitted: history.interfacesOmitted,
      };
      return answer;
    },
  );
}
