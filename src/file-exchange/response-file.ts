/** An inquiry's result as the official answer file (§2.2–2.4), for `res` answers and face results alike. */
import type { InquiryResult } from '../checks/result.js';
import type { CharacterCode, NumbersQuery, QualificationResponse, ResponseBody } from '../oqs/types.js';

/** Our notice code on an answer from the cache (central was unreachable): §8 (6), shown, not an error. */
export const CACHE_NOTICE_CODE = 'ONSHI-I-CACHE';

/**
 * What the counter was told, as the official answer file (§2.2–2.4). A cached answer always says
 * so: the file has no element for the source, so ProcessingResultCode is our CACHE_NOTICE_CODE
 * whatever central's answer carried (§8 (6): a code on success is shown, never an error), and
 * central's own code and message move into ProcessingResultMessage ahead of our notices (the time
 * central confirmed it, the re-verification). A receipt computer can never take it for a live answer.
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
    const central =
      result.resultCode !== undefined
        ? [`[中央の処理結果コード ${result.resultCode}${result.resultMessage ? `: ${result.resultMessage}` : ''}]`]
        : result.resultMessage
          ? [result.resultMessage]
          : [];
    const recheck = result.recheck && !result.recheck.queued ? [result.recheck.message] : [];
    body.resultCode = CACHE_NOTICE_CODE;
    body.resultMessage = [...central, ...result.notices, ...recheck].join(' ');
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
