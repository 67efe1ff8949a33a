/** An inquiry's result as the official answer file (§2.2–2.4), for `res` answers and face results alike. */
import type { InquiryResult } from '../checks/result.js';
import type { CharacterCode, NumbersQuery, QualificationResponse, ResponseBody } from '../oqs/types.js';

/** Our notice code on an answer from the cache (central was unreachable): §8 (6), shown, not an error. */
export const CACHE_NOTICE_CODE = 'ONSHI-I-CACHE';

/**
 * What the counter was told, as the official answer file (§2.2–2.4). A cached answer says so in
 * ProcessingResultCode/Message (with the time central confirmed it), since the file has no other
 * place for it.
 */
export function responseOf(
  result: InquiryResult,
  o: {
    referenceClassification: '1' | '2';
    institutionCode: string;
    characterCode: CharacterCode;
    processTime: string;
    fileId?: string;
    query?: NumbersQuery;
  },
): QualificationResponse {
  const body: ResponseBody = { status: result.status ?? '1', results: result.results };
  if (o.query !== undefined) body.query = o.query;
  if (result.validity !== undefined) body.validity = result.validity;
  if (result.resultCode !== undefined) body.resultCode = result.resultCode;
  if (result.resultMessage !== undefined) body.resultMessage = result.resultMessage;
  if (result.source === 'cache') {
    body.resultCode ??= CACHE_NOTICE_CODE;
    const recheck = result.recheck && !result.recheck.queued ? [result.recheck.message] : [];
    body.resultMessage = [...result.notices, ...recheck].join(' ');
  }
  const response: QualificationResponse = {
    header: {
      processTime: o.processTime,
      confirmationDate: result.confirmationDate,
      institutionCode: o.institutionCode,
      referenceClassification: o.referenceClassification,
      segmentOfResult: '1',
      characterCode: o.characterCode,
    },
    body,
  };
  if (o.fileId !== undefined) response.header.fileId = o.fileId;
  return response;
}
