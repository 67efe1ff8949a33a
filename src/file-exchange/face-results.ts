/** Face-reader style results (spec §3): every card check made at the gateway, also as an answer file. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { InquiryResult } from '../checks/result.js';
import { writeFileAtomicAsync } from '../core/atomic-file.js';
import { encodeResponseXml, faceResultName, shiftJisSafeResponse } from '../oqs/index.js';
import { timestampJst } from '../oqs/dates.js';
import type { CharacterCode } from '../oqs/types.js';
import { responseOf } from './response-file.js';
import type { FileExchangeDeps } from './types.js';

/**
 * Writes the face-reader style result of a card check to `dir`. Central's and cached answers are
 * written (a cached one with a notice saying so); an "unavailable" answer is not (the terminal
 * writes no file for a check that gave no eligibility). Returns the file name.
 */
export async function writeFaceResult(
  d: Pick<FileExchangeDeps, 'options' | 'institutionCode' | 'logger'>,
  dir: string,
  mode: number,
  result: InquiryResult,
): Promise<string | undefined> {
  if (!d.options.faceFiles || result.source === 'none') return undefined;
  const characterCode: CharacterCode = d.options.encoding === 'Shift_JIS' ? '1' : '0';
  const now = new Date();
  const response = responseOf(result, {
    referenceClassification: '1',
    institutionCode: d.institutionCode,
    characterCode,
    processTime: timestampJst(now),
    fileId: randomBytes(12).toString('base64'),
  });
  const name = faceResultName(d.institutionCode, randomBytes(4).toString('hex'), timestampJst(now));
  await writeFileAtomicAsync(
    join(dir, name),
    encodeResponseXml(characterCode === '1' ? shiftJisSafeResponse(response) : response),
    mode,
  );
  d.logger.info('face result written', { event: 'fx_face_written', file: name, source: result.source });
  return name;
}
