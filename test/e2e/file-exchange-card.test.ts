/**
 * The face-reader style result of the file exchange: a card check made at the gateway (WebSocket
 * `inquiry.card`, real pcscd + the virtual card, central over mutual TLS) also appears as
 * `OQSsiquc01res_face_*` in the face folder, read by the spec-only test receipt computer's parser.
 * Fails (never skips) in CI without pcscd.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, SHARED_PKI_DIR, waitFor, type Harness } from '../helpers/gateway.js';
import { ensurePcscd } from '../helpers/pcscd.js';
import { parseAnswer } from '../helpers/receipt-computer.js';
import { VirtualCard, ensureCardProfiles, VPCD_BASE_PORT } from '../../src/sim/card/index.js';

const READER = 'Virtual PCD 00 00';
let h: Harness;
let card: VirtualCard;
let root: string;

t.before(async () => {
  if (!(await ensurePcscd(t))) return;
  await ensureCardProfiles(SHARED_PKI_DIR);
  card = await VirtualCard.create({
    stateDir: SHARED_PKI_DIR,
    profile: 'normal',
    port: VPCD_BASE_PORT,
    resetCounters: true,
  });
  root = mkdtempSync(join(tmpdir(), 'onshi-fx-face-'));
  for (const d of ['req', 'res', 'face']) mkdirSync(join(root, d));
  h = await startHarness({
    reader: { enabled: true, readerName: READER },
    fileExchange: { enabled: true, reqDir: join(root, 'req'), resDir: join(root, 'res'), faceDir: join(root, 'face') },
  });
});
t.teardown(async () => {
  await h?.close();
  await card?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

t.test('a card check at the gateway also writes the face result file', async (t) => {
  if (!h) return;
  // Out and in again, as a patient would; pcscd notices within its ~0.5 s poll.
  await card.remove();
  await new Promise((r) => setTimeout(r, 1200));
  await card.setProfile('normal', true);
  await card.insert();
  await new Promise((r) => setTimeout(r, 1200));
  const client = await h.connect();
  const id = 'face-1';
  const r = await client.request(
    { type: 'inquiry.card', id, mode: 'pin', deadlineMs: 20000 },
    {
      onProgress: (m) => {
        if (m.type === 'pin.required') void client.request({ type: 'pin.submit', inquiryId: id, pin: '1234' });
      },
    },
  );
  t.match(r.result, { source: 'central', validity: '1' });
  const faceDir = join(root, 'face');
  await waitFor(() => readdirSync(faceDir).some((f) => f.endsWith('.xml')), 'the face result file');
  const files = readdirSync(faceDir);
  t.equal(files.length, 1, 'one file, no temp file left');
  t.match(
    files[0],
    new RegExp(`^OQSsiquc01res_face_${h.config.institutionCode}[0-9a-f]+_\\d{14}\\.xml$`),
    'named as the terminal names it (§3)',
  );
  const a = parseAnswer(files[0]!, readFileSync(join(faceDir, files[0]!)));
  t.match(a.header, {
    ReferenceClassification: '1',
    SegmentOfResult: '1',
    CharacterCodeIdentifier: '0',
    MedicalInstitutionCode: h.config.institutionCode,
  });
  t.match(a.body, { ProcessingResultStatus: '1', QualificationValidity: '1' });
  t.equal(a.results[0]!.Name, 'カード　一郎');
  t.notMatch(a.text, /QualificationConfirmSearchInfo/, 'no search-info echo in a face result');
  t.same(readdirSync(join(root, 'res')), [], 'nothing in res: no request was made there');
});
