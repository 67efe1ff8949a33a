/**
 * The central simulator's synthetic population and the eligibility rules it answers with.
 * Every person is fake. The seed covers every 資格有効性 value the gateway must handle, 後期高齢者
 * without 枝番, 6-digit 国保 insurer numbers, names with 髙/﨑/an IVS sequence/a private-use
 * character, the nested 高齢受給者証 and 限度額適用認定証 blocks, and each 負担割合 / 限度額適用区分
 * combination that does not fit.
 */
import type {
  ElderlyRecipientInfo,
  LimitApplicationInfo,
  NumbersQuery,
  QualificationResult,
  Validity,
} from '../../oqs/types.js';
import { normalizeInsurerNumber } from '../../oqs/identifiers.js';
import { todayJst } from '../../oqs/dates.js';

export interface SimQualification {
  /** digits only, 6 or 8 (the wire form is space-padded) */
  insurerNumber: string;
  symbol?: string;
  number: string;
  branch?: string;
  insurerName: string;
  cardClassification: string;
  personalFamily: string;
  qualificationDate: string;
  /** the first day the qualification is no longer valid (資格喪失年月日) */
  disqualificationDate?: string;
  reasonOfLoss?: string;
  /** the day central learned of it: before this day it is invisible (the insurer's registration lag) */
  registeredOn?: string;
  partialContributionRatio?: string;
  elderly?: ElderlyRecipientInfo;
  limitInfo?: LimitApplicationInfo;
}

export interface SimPerson {
  id: string;
  label: string;
  name: string;
  nameKana: string;
  sex: '1' | '2' | '3';
  birthdate: string;
  address?: string;
  postNumber?: string;
  qualifications: SimQualification[];
}

/** A row of `onshi sim people`: numbers to query, and the validity the simulator will answer. */
export interface PeopleRow {
  id: string;
  label: string;
  insurerNumber: string;
  symbol: string;
  number: string;
  branch: string;
  birthdate: string;
  expectedValidity: Validity;
}

const KENPO = 'テスト健康保険組合';

/** id, label, kana given name, birth date, 負担割合 (高齢受給者証 or 後期高齢者 一部負担金, percent), 適用区分 (OQSCD012) */
const RATIO_CASES: ReadonlyArray<
  readonly [string, string, string, string, { kind: 'elderly' | 'partial'; value: string }, string]
> = [
  ['P0000013', '高齢受給者証 1割 + 現役並みⅠ', 'ｼﾞｭｳｻﾝ', '19530909', { kind: 'elderly', value: '10' }, 'B03'],
  ['P0000014', '高齢受給者証 2割 + 現役並みⅡ', 'ｼﾞｭｳﾖﾝ', '19541010', { kind: 'elderly', value: '20' }, 'B02'],
  ['P0000015', '高齢受給者証 3割 + 一般', 'ｼﾞｭｳｺﾞ', '19551111', { kind: 'elderly', value: '30' }, 'B04'],
  ['P0000016', '高齢受給者証 3割 + 低所得Ⅱ', 'ｼﾞｭｳﾛｸ', '19521212', { kind: 'elderly', value: '30' }, 'B05'],
  ['P0000017', '後期高齢者 1割 + 現役並みⅢ', 'ｼﾞｭｳﾅﾅ', '19400101', { kind: 'partial', value: '010' }, 'B01'],
];

function ratioCase([id, label, kana, birthdate, ratio, flag]: (typeof RATIO_CASES)[number], i: number): SimPerson {
  const dates = { issueDate: '20240301', validStartDate: '20240401', validEndDate: '20270731' };
  const x: SimQualification =
    ratio.kind === 'partial'
      ? {
          insurerNumber: '39139993',
          number: `1300${i + 1}`,
          insurerName: 'テスト県後期高齢者医療広域連合',
          partialContributionRatio: ratio.value,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20200401',
        }
      : {
          insurerNumber: '06279996',
          symbol: 'ﾜﾘｱｲ',
          number: `1300${i + 1}`,
          branch: '00',
          insurerName: KENPO,
          elderly: { ...dates, contributionRatio: ratio.value },
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20200401',
        };
  x.limitInfo = { classification: '01', classificationFlag: flag, ...dates };
  return {
    id,
    label: `有効 (割合不整合: ${label})`,
    name: `割合　${['十三', '十四', '十五', '十六', '十七'][i]}`,
    nameKana: `ﾜﾘｱｲ ${kana}`,
    sex: i % 2 === 0 ? '1' : '2',
    birthdate,
    qualifications: [x],
  };
}

/** YYYYMMDD plus `days` (calendar arithmetic in UTC: the strings are dates, not instants). */
export function addDays(yyyymmdd: string, days: number): string {
  const d = new Date(
    Date.UTC(Number(yyyymmdd.slice(0, 4)), Number(yyyymmdd.slice(4, 6)) - 1, Number(yyyymmdd.slice(6, 8)) + days),
  );
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

/** The simulated day on which P0000018's new insurer registers: day 1 is the simulator's first day. */
export const LAG_REGISTRATION_DAY = 4;

/** The person whose new insurer registers late (the time-lag recheck scenario), relative to `day1`. */
export function lagPerson(day1: string): SimPerson {
  return {
    id: 'P0000018',
    label: `転職直後: 旧資格は無効、新しい保険者は ${LAG_REGISTRATION_DAY} 日目に登録 (registration lag; advance with onshi sim day)`,
    name: '転職　十八',
    nameKana: 'ﾃﾝｼｮｸ ｼﾞｭｳﾊﾁ',
    sex: '1',
    birthdate: '19880808',
    qualifications: [
      {
        insurerNumber: '06270011',
        symbol: 'ﾗｸﾞ',
        number: '1818',
        branch: '00',
        insurerName: KENPO,
        cardClassification: '01',
        personalFamily: '1',
        qualificationDate: '20150401',
        disqualificationDate: day1,
        reasonOfLoss: '03',
      },
      {
        insurerNumber: '01130020',
        symbol: '１８１８',
        number: '18',
        branch: '00',
        insurerName: '全国健康保険協会東京支部',
        cardClassification: '01',
        personalFamily: '1',
        qualificationDate: day1,
        registeredOn: addDays(day1, LAG_REGISTRATION_DAY - 1),
      },
    ],
  };
}

/** `day1`: the simulator's first day (YYYYMMDD), for the people whose story is told in simulated days. */
export function seedPopulation(day1 = todayJst()): SimPerson[] {
  return [...validPeople(), ...invalidAndAmbiguousPeople(), ...cardAndRatioPeople(day1)];
}

/** 有効 people with the names that test the codecs (外字, 旧字, private use), 国保 and 後期高齢者. */
function validPeople(): SimPerson[] {
  return [
    {
      id: 'P0000001',
      label: '有効 (健保, 限度額 consent)',
      name: 'テスト　太郎',
      nameKana: 'ﾃｽﾄ ﾀﾛｳ',
      sex: '1',
      birthdate: '19800401',
      address: '東京都千代田区テスト町1-1',
      postNumber: '100-0001',
      qualifications: [
        {
          insurerNumber: '06139992',
          symbol: 'テスト',
          number: '12345',
          branch: '00',
          insurerName: KENPO,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20200401',
          limitInfo: { classification: '01', classificationFlag: 'A03', validStartDate: '20240901' },
        },
      ],
    },
    {
      id: 'P0000002',
      label: '有効 (name with 髙)',
      name: '髙橋　一郎',
      nameKana: 'ﾀｶﾊｼ ｲﾁﾛｳ',
      sex: '1',
      birthdate: '19750315',
      qualifications: [
        {
          insurerNumber: '01130012',
          symbol: '１２３',
          number: '4567',
          branch: '01',
          insurerName: '全国健康保険協会東京支部',
          cardClassification: '01',
          personalFamily: '2',
          qualificationDate: '20150401',
        },
      ],
    },
    {
      id: 'P0000003',
      label: '有効 (6-digit 国保, name with 﨑)',
      name: '山﨑　花子',
      nameKana: 'ﾔﾏｻﾞｷ ﾊﾅｺ',
      sex: '2',
      birthdate: '19880720',
      qualifications: [
        {
          insurerNumber: '139998',
          symbol: 'ﾃｽﾄ',
          number: '7777',
          branch: '01',
          insurerName: 'テスト市国民健康保険',
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20190101',
        },
      ],
    },
    {
      id: 'P0000004',
      label: '有効 (name with a private-use character)',
      name: '\uE000川　三郎',
      nameKana: 'ﾔﾏｶﾜ ｻﾌﾞﾛｳ',
      sex: '1',
      birthdate: '19661111',
      qualifications: [
        {
          insurerNumber: '06130017',
          symbol: 'ｶﾞｲｼﾞ',
          number: '3003',
          branch: '00',
          insurerName: KENPO,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20100401',
        },
      ],
    },
    {
      id: 'P0000005',
      label: '有効 (後期高齢者, no 枝番)',
      name: 'テスト　花子',
      nameKana: 'ﾃｽﾄ ﾊﾅｺ',
      sex: '2',
      birthdate: '19450505',
      qualifications: [
        {
          insurerNumber: '39139993',
          number: '99990001',
          insurerName: 'テスト県後期高齢者医療広域連合',
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20200505',
          partialContributionRatio: '010',
        },
      ],
    },
  ];
}

/** 無効, a changed insurer, 複数該当, 70–74 with 高齢受給者証. */
function invalidAndAmbiguousPeople(): SimPerson[] {
  return [
    {
      id: 'P0000006',
      label: '無効 (lost, nothing newer)',
      name: '無効　五郎',
      nameKana: 'ﾑｺｳ ｺﾞﾛｳ',
      sex: '1',
      birthdate: '19900202',
      qualifications: [
        {
          insurerNumber: '06270011',
          symbol: 'ﾑｺｳ',
          number: '606',
          branch: '00',
          insurerName: KENPO,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20150401',
          disqualificationDate: '20240401',
          reasonOfLoss: '99',
        },
      ],
    },
    {
      id: 'P0000007',
      label: '無効（新しい資格あり） (changed insurer)',
      name: '転職　六子',
      nameKana: 'ﾃﾝｼｮｸ ﾑﾂｺ',
      sex: '2',
      birthdate: '19850606',
      qualifications: [
        {
          insurerNumber: '06270011',
          symbol: 'ﾃﾝｼｮｸ',
          number: '707',
          branch: '00',
          insurerName: KENPO,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20100401',
          disqualificationDate: '20240301',
          reasonOfLoss: '03',
        },
        {
          insurerNumber: '01130020',
          symbol: '７０７',
          number: '77',
          branch: '00',
          insurerName: '全国健康保険協会東京支部',
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20240301',
        },
      ],
    },
    {
      id: 'P0000009',
      label: '複数該当 (first of two)',
      name: '重複　九',
      nameKana: 'ｼﾞｭｳﾌｸ ｷｭｳ',
      sex: '1',
      birthdate: '20100101',
      qualifications: [
        {
          insurerNumber: '27139997',
          symbol: 'ﾌｸｽｳ',
          number: '1001',
          branch: '00',
          insurerName: 'テスト府健康保険組合',
          cardClassification: '01',
          personalFamily: '2',
          qualificationDate: '20100101',
        },
      ],
    },
    {
      id: 'P0000010',
      label: '複数該当 (second of two)',
      name: '重複　十',
      nameKana: 'ｼﾞｭｳﾌｸ ｼﾞｭｳ',
      sex: '2',
      birthdate: '20100101',
      qualifications: [
        {
          insurerNumber: '27139997',
          symbol: 'ﾌｸｽｳ',
          number: '1001',
          branch: '00',
          insurerName: 'テスト府健康保険組合',
          cardClassification: '01',
          personalFamily: '2',
          qualificationDate: '20100101',
        },
      ],
    },
    {
      id: 'P0000011',
      label: '有効 (70–74, 高齢受給者証 2割 + 限度額 一般)',
      name: '高齢　十一',
      nameKana: 'ｺｳﾚｲ ｼﾞｭｳｲﾁ',
      sex: '1',
      birthdate: '19540303',
      qualifications: [
        {
          insurerNumber: '06279996',
          symbol: 'ｺｳﾚｲ',
          number: '1111',
          branch: '00',
          insurerName: KENPO,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '19760401',
          elderly: {
            issueDate: '20240301',
            validStartDate: '20240401',
            validEndDate: '20270731',
            contributionRatio: '20',
          },
          limitInfo: {
            classification: '01',
            classificationFlag: 'B04',
            issueDate: '20240301',
            validStartDate: '20240401',
            validEndDate: '20270731',
          },
        },
      ],
    },
  ];
}

/** an IVS name, the 負担割合 cases, the virtual cards' holders and a card linked to another person's record. */
function cardAndRatioPeople(day1: string): SimPerson[] {
  return [
    {
      id: 'P0000012',
      label: '有効 (name with an IVS sequence)',
      name: '葛\u{E0100}飾　十二',
      nameKana: 'ｶﾂｼｶ ｼﾞｭｳﾆ',
      sex: '1',
      birthdate: '19700707',
      qualifications: [
        {
          insurerNumber: '34149997',
          symbol: 'ｲﾌﾞｽ',
          number: '1212',
          branch: '00',
          insurerName: 'テスト広島健康保険組合',
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20000401',
        },
      ],
    },
    // 負担割合 vs 限度額適用区分: each combination the gateway must flag "confirm with the insurer".
    ...RATIO_CASES.map(ratioCase),
    lagPerson(day1),
    // Card holders: the virtual cards' certificates carry CN=<id> (see src/sim/card).
    ...['C0000001', 'C0000002', 'C0000003', 'C0000004', 'C0000005'].map(
      (id, i): SimPerson => ({
        id,
        label: `card holder ${i + 1}`,
        name: `カード　${['一', '二', '三', '四', '五'][i]}郎`,
        nameKana: `ｶｰﾄﾞ ${['ｲﾁ', 'ｼﾞ', 'ｻﾌﾞ', 'ｼ', 'ｺﾞ'][i]}ﾛｳ`,
        sex: '1',
        birthdate: `1970010${i + 1}`,
        qualifications: [
          {
            insurerNumber: '06139992',
            symbol: 'ｶｰﾄﾞ',
            number: `80${i + 1}`,
            branch: '00',
            insurerName: KENPO,
            cardClassification: '01',
            personalFamily: '1',
            qualificationDate: '20200401',
          },
        ],
      }),
    ),
    {
      // The `misregistered` card's holder is カード 六郎 (ｶｰﾄﾞ ﾛｸﾛｳ, 1970-01-06, 男), but the insurer linked
      // the card to this record: a receipt computer that sends what it knows sees the disagreement.
      id: 'C0000006',
      label: "card linked to another person's record (紐付け誤り; holder ｶｰﾄﾞ ﾛｸﾛｳ 19700106 男)",
      name: '誤登録　花子',
      nameKana: 'ｺﾞﾄｳﾛｸ ﾊﾅｺ',
      sex: '2',
      birthdate: '19920202',
      qualifications: [
        {
          insurerNumber: '06139992',
          symbol: 'ｶｰﾄﾞ',
          number: '806',
          branch: '00',
          insurerName: KENPO,
          cardClassification: '01',
          personalFamily: '1',
          qualificationDate: '20200401',
        },
      ],
    },
  ];
}

/** A query for numbers no insurer registered: the seed's 該当資格なし row. */
export const UNREGISTERED_ROW: Omit<PeopleRow, 'expectedValidity'> = {
  id: 'NONE',
  label: '該当資格なし (numbers nobody registered)',
  insurerNumber: '06139992',
  symbol: 'テスト',
  number: '99999',
  branch: '00',
  birthdate: '19900101',
};

function sameNumbers(q: NumbersQuery, x: SimQualification): boolean {
  return (
    normalizeInsurerNumber(q.insurerNumber) === x.insurerNumber &&
    (q.symbol ?? '') === (x.symbol ?? '') &&
    q.number === x.number &&
    (q.branch ?? '') === (x.branch ?? '')
  );
}

const validOn = (x: SimQualification, date: string): boolean =>
  x.qualificationDate <= date && (x.disqualificationDate === undefined || date < x.disqualificationDate);

export interface Eligibility {
  validity: Validity;
  matches: { person: SimPerson; qualification: SimQualification }[];
}

/**
 * 照会区分 2: who do these numbers and this birth date belong to, on `date`? Central only knows
 * what insurers registered by `today` (the simulated processing day).
 */
export function eligibilityByNumbers(
  people: readonly SimPerson[],
  q: NumbersQuery,
  date: string,
  today = date,
): Eligibility {
  const matches = people.flatMap((person) =>
    person.birthdate !== q.birthdate
      ? []
      : person.qualifications
          .filter((x) => sameNumbers(q, x) && isRegistered(x, today))
          .map((qualification) => ({ person, qualification })),
  );
  if (matches.length === 0) return { validity: '4', matches };
  if (new Set(matches.map((m) => m.person.id)).size > 1) return { validity: '5', matches };
  const { person, qualification } = matches[0]!;
  if (validOn(qualification, date)) return { validity: '1', matches };
  const newer = person.qualifications.some((x) => x !== qualification && isRegistered(x, today) && validOn(x, date));
  return { validity: newer ? '3' : '2', matches };
}

/** 照会区分 1: the card holder's eligibility on `date` (the current qualification, else the latest one). */
export function eligibilityByPerson(person: SimPerson | undefined, date: string, today = date): Eligibility {
  if (!person) return { validity: '4', matches: [] };
  const known = person.qualifications.filter((x) => isRegistered(x, today));
  const current = known.find((x) => validOn(x, date));
  if (current) return { validity: '1', matches: [{ person, qualification: current }] };
  const latest = [...known].sort((a, b) => b.qualificationDate.localeCompare(a.qualificationDate))[0];
  return latest ? { validity: '2', matches: [{ person, qualification: latest }] } : { validity: '4', matches: [] };
}

function isRegistered(x: SimQualification, date: string): boolean {
  return (x.registeredOn ?? '00000000') <= date;
}

/** The wire result block for one match. */
export function toResult(person: SimPerson, x: SimQualification, limitConsent: boolean): QualificationResult {
  const r: QualificationResult = {
    cardClassification: x.cardClassification,
    insurerNumber: x.insurerNumber.padStart(8, ' '),
    number: x.number,
    personalFamily: x.personalFamily,
    name: person.name,
    nameKana: person.nameKana,
    sex1: person.sex,
    birthdate: person.birthdate,
    qualificationDate: x.qualificationDate,
    insurerName: x.insurerName,
    consents: {},
  };
  if (x.symbol !== undefined) r.symbol = x.symbol;
  if (x.branch !== undefined) r.branch = x.branch;
  if (person.address !== undefined) r.address = person.address;
  if (person.postNumber !== undefined) r.postNumber = person.postNumber;
  if (x.disqualificationDate !== undefined) r.disqualificationDate = x.disqualificationDate;
  if (x.reasonOfLoss !== undefined) r.reasonOfLoss = x.reasonOfLoss;
  if (x.partialContributionRatio !== undefined) r.partialContributionRatio = x.partialContributionRatio;
  if (x.elderly !== undefined) r.elderly = { ...x.elderly };
  r.limitConsent = { flag: limitConsent ? '1' : '0' };
  if (limitConsent && x.limitInfo !== undefined) r.limitInfo = { ...x.limitInfo };
  return r;
}

/** The rows `onshi sim people` prints: one per distinct queryable set of numbers. */
export function peopleRows(people: readonly SimPerson[], date: string): PeopleRow[] {
  const rows: PeopleRow[] = [];
  const seen = new Set<string>();
  for (const person of people) {
    for (const x of person.qualifications) {
      const key = [x.insurerNumber, x.symbol ?? '', x.number, x.branch ?? '', person.birthdate].join('|');
      if (seen.has(key)) continue;
      seen.add(key);
      const query: NumbersQuery = {
        insurerNumber: x.insurerNumber,
        number: x.number,
        birthdate: person.birthdate,
        limitConsent: '0',
      };
      if (x.symbol !== undefined) query.symbol = x.symbol;
      if (x.branch !== undefined) query.branch = x.branch;
      rows.push({
        id: person.id,
        label: person.label,
        insurerNumber: x.insurerNumber,
        symbol: x.symbol ?? '',
        number: x.number,
        branch: x.branch ?? '',
        birthdate: person.birthdate,
        expectedValidity: eligibilityByNumbers(people, query, date).validity,
      });
    }
  }
  const none: NumbersQuery = { ...UNREGISTERED_ROW, limitConsent: '0' };
  rows.push({ ...UNREGISTERED_ROW, expectedValidity: eligibilityByNumbers(people, none, date).validity });
  return rows;
}
