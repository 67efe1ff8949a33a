/**
 * The OQS domain, in our own names. Wire names (XmlMsg element names) live only in the codecs.
 * All values are strings exactly as on the wire: leading zeros and spaces matter ("01" ≠ "1").
 * See shared/spec/oqs-messages.md §2–§4.
 */

/** OQSCD002 照会区分 */
export type ReferenceClassification = '1' | '2';
/** OQSCD003 処理結果区分: 1 正常終了, 2 処理中, 9 異常終了 */
export type SegmentOfResult = '1' | '2' | '9';
/** OQSCD004 処理結果状況: 1 正常終了, 2 エラー */
export type ProcessingResultStatus = '1' | '2';
/** OQSCD005 文字コード識別: 0 UTF-8, 1 Shift_JIS */
export type CharacterCode = '0' | '1';
/** OQSCD006 資格有効性 */
export type Validity = '1' | '2' | '3' | '4' | '5' | '6';

export type WireEncoding = 'UTF-8' | 'Shift_JIS';

/** The insured-card facts a check by numbers (照会区分 2) sends: QualificationConfirmSearchInfo. */
export interface NumbersQuery {
  /** 保険者番号, 8 chars right-aligned and space-padded on the wire (`"  139998"`). */
  insurerNumber: string;
  /** 被保険者証記号, as printed (may be kanji/kana/full-width); absent when the card has none. */
  symbol?: string;
  /** 被保険者証番号 */
  number: string;
  /** 枝番, two digits; absent for 後期高齢者. */
  branch?: string;
  /** 生年月日 YYYYMMDD */
  birthdate: string;
  /** 限度額適用認定証提供同意フラグ (OQSCD001) */
  limitConsent: '0' | '1';
  /** 任意の識別子: the per-record id echoed back (patient key). */
  arbitraryId?: string;
}

/** A single check by numbers: OQSsiquc01req. */
export interface QualificationRequest {
  /** 資格確認日 YYYYMMDD */
  confirmationDate: string;
  /** 医療機関コード, 10 digits */
  institutionCode: string;
  /** 任意のファイル識別子, echoed */
  fileId?: string;
  query: NumbersQuery;
}

/** One consent triple: *ConsFlg / *ConsTime / *AvailableTime. */
export interface Consent {
  /** OQSCD016 (or OQSCD001 for 限度額) */
  flag: string;
  time?: string;
  availableTime?: string;
}

/** 高齢受給者証情報 */
export interface ElderlyRecipientInfo {
  issueDate?: string;
  validStartDate?: string;
  validEndDate?: string;
  /** percent as on the wire, e.g. "020" or "20" = 2割 */
  contributionRatio?: string;
  /** Child elements we do not model, kept verbatim (written back on encode). */
  extra?: XmlTree;
}

/** 限度額適用認定証関連情報 */
export interface LimitApplicationInfo {
  /** OQSCD011 */
  classification?: string;
  /** 適用区分 OQSCD012 (A01…B10) */
  classificationFlag?: string;
  issueDate?: string;
  validStartDate?: string;
  validEndDate?: string;
  longTermDate?: string;
  /** Child elements we do not model, kept verbatim (written back on encode). */
  extra?: XmlTree;
}

/** 特定疾病療養受療証 */
export interface SpecificDiseaseInfo {
  category?: string;
  certificateDate?: string;
  validStartDate?: string;
  validEndDate?: string;
  selfPay?: string;
  /** Child elements we do not model, kept verbatim (written back on encode). */
  extra?: XmlTree;
}

/**
 * A generic XML subtree for blocks we carry but do not interpret (e.g. MedicalTicketInfo),
 * in the JSON form of the tree: element name → text, subtree, or array for repeats.
 */
export type XmlTree = { [name: string]: XmlValue };
export type XmlValue = string | XmlTree | XmlValue[];

/** ResultOfQualificationConfirmation */
export interface QualificationResult {
  /** 被保険者証区分 OQSCD010 */
  cardClassification: string;
  insurerNumber?: string;
  symbol?: string;
  number?: string;
  branch?: string;
  /** 本人・家族 OQSCD009 */
  personalFamily?: string;
  /** 被保険者氏名(世帯主) */
  insuredName?: string;
  /** 氏名, exactly as sent (Unicode, variation selectors kept) */
  name: string;
  nameKana?: string;
  nameOfOther?: string;
  nameOfOtherKana?: string;
  /** OQSCD007 */
  sex1: string;
  sex2?: string;
  birthdate: string;
  address?: string;
  postNumber?: string;
  qualificationDate?: string;
  disqualificationDate?: string;
  certificateIssuanceDate?: string;
  cardValidDate?: string;
  cardExpirationDate?: string;
  /** 一部負担金割合, 3-digit percent ("010" = 1割) */
  partialContributionRatio?: string;
  /** OQSCD015 */
  preschool?: string;
  /** OQSCD008 */
  reasonOfLoss?: string;
  insurerName: string;
  elderly?: ElderlyRecipientInfo;
  /** 限度額適用認定証 consent (OQSCD001 flag + time) */
  limitConsent?: Consent;
  limitInfo?: LimitApplicationInfo;
  specificDiseasesConsent?: Consent;
  specificDiseases?: SpecificDiseaseInfo[];
  /**
   * Every other consent triple, keyed by the element prefix before ConsFlg/ConsTime/AvailableTime
   * (e.g. "PharmacistsInfo", "SpecificHealthCheckupsInfo", "DiagnosisInfo", "OperationInfo"),
   * whether sent flat or nested in a block of that name.
   */
  consents: Record<string, Consent>;
  /** 照会番号 */
  referenceNumber?: string;
  /** Elements we do not model, kept verbatim so that nothing is lost in a round trip. */
  extra?: XmlTree;
}

export interface ResponseHeader {
  /** 処理実行日時 YYYYMMDDHHmmss */
  processTime: string;
  confirmationDate: string;
  institutionCode: string;
  fileId?: string;
  referenceClassification: ReferenceClassification;
  segmentOfResult: SegmentOfResult;
  errorCode?: string;
  errorMessage?: string;
  characterCode: CharacterCode;
  /** Child elements we do not model, kept verbatim (written back on encode). */
  extra?: XmlTree;
}

export interface ResponseBody {
  /** Echo of the request block (照会区分 2 only). */
  query?: NumbersQuery;
  status: ProcessingResultStatus;
  /** An error code, or on success a notice to show (never an error by itself). */
  resultCode?: string;
  resultMessage?: string;
  /** Present when status = 1. */
  validity?: Validity;
  /** 処方箋発行形態 OQSCD017 */
  prescriptionIssueSelect?: string;
  results: QualificationResult[];
  /** Child elements we do not model, kept verbatim (written back on encode). */
  extra?: XmlTree;
  /**
   * True when the body carried no ProcessingResultStatus (accepted only with SegmentOfResult ≠ 1,
   * where a file-level error may come without a per-person part); `status` is then '2'. The
   * encoder omits the element again so a round trip is lossless.
   */
  statusMissing?: boolean;
}

/** OQSsiquc01res (照会区分 2) or a face-reader result (照会区分 1). */
export interface QualificationResponse {
  header: ResponseHeader;
  body: ResponseBody;
}
