/** `onshi inquiry`: one check, by insurance numbers or by My Number card, through the WebSocket API. */
import { GatewayClient } from '../client/index.js';
import { parseCliArgs } from './args.js';
import { cardInquiry } from './card-inquiry.js';
import type { CliContext } from './status.js';

export async function cmdInquiry(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCliArgs(
    argv,
    {
      numbers: { type: 'string' },
      birthdate: { type: 'string' },
      'limit-consent': { type: 'boolean' },
      date: { type: 'string' },
      deadline: { type: 'string' },
      ws: { type: 'string' },
      token: { type: 'string' },
      card: { type: 'boolean' },
      visual: { type: 'boolean' },
      'confirm-last-try': { type: 'boolean' },
      reader: { type: 'string' },
      'known-birthdate': { type: 'string' },
      'known-kana': { type: 'string' },
      'known-sex': { type: 'string' },
      'changed-insurer': { type: 'boolean' },
      consent: { type: 'string' },
      'name-target': { type: 'string' },
    },
    ctx.usage,
  );
  // What the check adds to its question (the same on both flows); the gateway validates the values.
  const context: Record<string, unknown> = {};
  const known: Record<string, string> = {};
  if (values['known-birthdate']) known.birthdate = values['known-birthdate'];
  if (values['known-kana']) known.nameKana = values['known-kana'];
  if (values['known-sex']) known.sex = values['known-sex'];
  if (Object.keys(known).length > 0) context.knownFacts = known;
  if (values['changed-insurer']) context.changedInsurer = true;
  if (values.consent)
    context.consent = Object.fromEntries(
      values.consent
        .split(',')
        .filter(Boolean)
        .map((c) => [c.trim(), true]),
    );
  if (values['name-target']) context.nameTarget = values['name-target'];
  const url = values.ws ?? process.env.ONSHI_WS;
  const token = values.token ?? process.env.ONSHI_TOKEN;
  if (!url || !token) throw ctx.usage('inquiry needs --ws and --token (or ONSHI_WS and ONSHI_TOKEN)');
  if (values.card) {
    if (values.numbers || values.birthdate) throw ctx.usage('--card and --numbers are alternatives');
    const msg: Record<string, unknown> & { type: string } = {
      type: 'inquiry.card',
      mode: values.visual ? 'visual' : 'pin',
      limitConsent: values['limit-consent'] ?? false,
      ...context,
    };
    if (values.date) msg.confirmationDate = values.date;
    if (values.deadline) msg.deadlineMs = Number(values.deadline);
    if (values.reader) msg.readerName = values.reader;
    return cardInquiry(url, token, msg, values['confirm-last-try'] ?? false);
  }
  if (!values.numbers || !values.birthdate)
    throw ctx.usage('inquiry needs --numbers INSURER,SYMBOL,NUMBER,BRANCH and --birthdate YYYYMMDD');
  const parts = values.numbers.split(',');
  if (parts.length !== 4)
    throw ctx.usage('--numbers is INSURER,SYMBOL,NUMBER,BRANCH (leave SYMBOL or BRANCH empty when the card has none)');
  const [insurerNumber, symbol, number, branch] = parts as [string, string, string, string];
  const query: Record<string, unknown> = {
    insurerNumber,
    number,
    birthdate: values.birthdate,
    limitConsent: values['limit-consent'] ?? false,
  };
  if (symbol !== '') query.symbol = symbol;
  if (branch !== '') query.branch = branch;
  const msg: Record<string, unknown> & { type: string } = { type: 'inquiry.numbers', query, ...context };
  if (values.date) msg.confirmationDate = values.date;
  if (values.deadline) msg.deadlineMs = Number(values.deadline);
  const client = await GatewayClient.connect(url, token);
  try {
    const answer = await client.request(msg);
    process.stdout.write(JSON.stringify(answer.result, null, 2) + '\n');
    return 0;
  } finally {
    await client.close();
  }
}
