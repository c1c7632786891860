// The built-in country table: one line per country or territory of ITU-T E.164 (plus the
// non-geographic international services), parsed once by `CountryTable.itu`.
//
// Source: the ITU-T list of assigned country codes (E.164 annex to ITU Operational Bulletin) and
// the national numbering plans that administrations notify to the ITU (T0202 series), checked
// against regulators' announcements for recent changes: Lithuania's trunk prefix became 0 on
// 2025-03-01, Benin went to 10 digits with a leading 01 on 2024-11-30, Côte d'Ivoire to 10 digits
// on 2021-01-31, Colombia to 10-digit fixed numbers in 2021, Mexico dropped its 01/044/045 prefixes
// in 2019-2020.
//
// Columns (comma-separated, lists separated by ';'):
//   iso       ISO 3166-1 alpha-2 code; empty for the non-geographic services (+800, +870, …).
//             AC (Ascension), TA (Tristan da Cunha) are ISO "exceptionally reserved" codes and
//             XK (Kosovo) is the user-assigned code in common use; ITU assigns them numbering.
//   name      English short name.
//   code      ITU-T country calling code.
//   prefixes  E.164 prefixes that identify this country when it shares its calling code
//             (NANP area codes, +7 6/7 Kazakhstan, +44 1481 Guernsey …); empty means the
//             calling code itself.
//   min,max   National significant number lengths (digits after the calling code).
//   trunk     National trunk prefix dialled before the NSN inside the country; empty when none.
//   intl      The main international call prefix.
//   alt       Other international prefixes in current use (carrier selection in KR, TW, ID …).
//   flags     keeps0   the leading 0 is part of the NSN and stays after +CC (IT, SM, VA, CI …);
//             trunkopt the trunk prefix may be omitted in national dialling: the NANP's ten-digit
//                      dialling, MH, MC, GE, and CN and IN whose mobile numbers are dialled without it
//                      (their local fixed numbers are shorter than any national number, so no ambiguity);
//             shared   shares the calling code and its ranges with another country and has no
//                      range of its own, so classification never picks it (BL, MF share +590
//                      with Guadeloupe).
//
// Known simplifications:
// - The length range is the union over all number types; a number of a valid length is not
//   checked against the allocated ranges (that is the rate deck's job).
// - +1: Canada is told apart from the United States by its geographic area codes (and 600);
//   toll-free (8XX) and other non-geographic NANP codes classify as US. Each NANP member's
//   own area codes identify it.
// - +590: Saint Barthélemy and Saint Martin share Guadeloupe's ranges and classify as GP.
// - Vatican City is reached inside Italy's plan (+39 06 698); the code +379 assigned to it is not in
//   service and is left out.
// - Territories without public numbering of their own are left out (BV, GS, HM, PN, TF, UM);
//   unrecognised entities (Abkhazia, South Ossetia, Northern Cyprus, Transnistria) classify as
//   the country whose calling code they use.
// - Belarus dials 8, then the area or operator code with its 0 (8 017 …, 8 029 …): the trunk prefix is
//   listed as 80; its 8 800/8 820 service numbers are recognised only in + or international form.
// - Brazil's and Colombia's carrier-selection codes are not modelled beyond the listed
//   international prefixes: a national number dialled with a carrier code is not recognised.
// - Non-geographic numbers dialled inside their country without the trunk prefix (AU 13/1300/
//   1800, IE 1800, IL 1-800) normalise only from the + or international form.
enum CountryTableData {
    static let csv = """
        iso,name,code,prefixes,min,max,trunk,intl,alt,flags
        US,United States,1,,10,10,1,011,,trunkopt
        CA,Canada,1,1204;1226;1236;1249;1250;1257;1263;1289;1306;1343;1354;1365;1367;1368;1382;1403;1416;1418;1428;1431;1437;1438;1450;1468;1474;1506;1514;1519;1548;1579;1581;1584;1587;1600;1604;1613;1639;1647;1672;1683;1705;1709;1742;1753;1778;1780;1782;1807;1819;1825;1867;1873;1879;1902;1905;1942,10,10,1,011,,trunkopt
        AG,Antigua and Barbuda,1,1268,10,10,1,011,,trunkopt
        AI,Anguilla,1,1264,10,10,1,011,,trunkopt
        AS,American Samoa,1,1684,10,10,1,011,,trunkopt
        BB,Barbados,1,1246,10,10,1,011,,trunkopt
        BM,Bermuda,1,1441,10,10,1,011,,trunkopt
        BS,Bahamas,1,1242,10,10,1,011,,trunkopt
        DM,Dominica,1,1767,10,10,1,011,,trunkopt
        DO,Dominican Republic,1,1809;1829;1849,10,10,1,011,,trunkopt
        GD,Grenada,1,1473,10,10,1,011,,trunkopt
        GU,Guam,1,1671,10,10,1,011,,trunkopt
        JM,Jamaica,1,1876;1658,10,10,1,011,,trunkopt
        KN,Saint Kitts and Nevis,1,1869,10,10,1,011,,trunkopt
        KY,Cayman Islands,1,1345,10,10,1,011,,trunkopt
        LC,Saint Lucia,1,1758,10,10,1,011,,trunkopt
        MP,Northern Mariana Islands,1,1670,10,10,1,011,,trunkopt
        MS,Montserrat,1,1664,10,10,1,011,,trunkopt
        PR,Puerto Rico,1,1787;1939,10,10,1,011,,trunkopt
        SX,Sint Maarten,1,1721,10,10,1,011,,trunkopt
        TC,Turks and Caicos Islands,1,1649,10,10,1,011,,trunkopt
        TT,Trinidad and Tobago,1,1868,10,10,1,011,,trunkopt
        VC,Saint Vincent and the Grenadines,1,1784,10,10,1,011,,trunkopt
        VG,British Virgin Islands,1,1284,10,10,1,011,,trunkopt
        VI,United States Virgin Islands,1,1340,10,10,1,011,,trunkopt
        RU,Russia,7,,10,10,8,810,,
        KZ,Kazakhstan,7,76;77,10,10,8,810,,
        EG,Egypt,20,,8,10,0,00,,
        SS,South Sudan,211,,9,9,0,00,,
        MA,Morocco,212,,9,9,0,00,,
        EH,Western Sahara,212,2125288;2125289,9,9,0,00,,
        DZ,Algeria,213,,8,9,0,00,,
        TN,Tunisia,216,,8,8,,00,,
        LY,Libya,218,,8,9,0,00,,
        GM,Gambia,220,,7,7,,00,,
        SN,Senegal,221,,9,9,,00,,
        MR,Mauritania,222,,8,8,,00,,
        ML,Mali,223,,8,8,,00,,
        GN,Guinea,224,,8,9,,00,,
        CI,Côte d'Ivoire,225,,10,10,,00,,keeps0
        BF,Burkina Faso,226,,8,8,,00,,
        NE,Niger,227,,8,8,,00,,
        TG,Togo,228,,8,8,,00,,
        BJ,Benin,229,,10,10,,00,,keeps0
        MU,Mauritius,230,,7,8,,020,,
        LR,Liberia,231,,7,9,0,00,,
        SL,Sierra Leone,232,,8,8,0,00,,
        GH,Ghana,233,,9,9,0,00,,
        NG,Nigeria,234,,8,10,0,009,,
        TD,Chad,235,,8,8,,00,,
        CF,Central African Republic,236,,8,8,,00,,
        CM,Cameroon,237,,9,9,,00,,
        CV,Cape Verde,238,,7,7,,0,,
        ST,São Tomé and Príncipe,239,,7,7,,00,,
        GQ,Equatorial Guinea,240,,9,9,,00,,
        GA,Gabon,241,,7,8,,00,,keeps0
        CG,Republic of the Congo,242,,9,9,,00,,keeps0
        CD,Democratic Republic of the Congo,243,,7,9,0,00,,
        AO,Angola,244,,9,9,,00,,
        GW,Guinea-Bissau,245,,7,9,,00,,
        IO,British Indian Ocean Territory,246,,7,7,,00,,
        AC,Ascension Island,247,,5,6,,00,,
        SC,Seychelles,248,,7,7,,00,,
        SD,Sudan,249,,9,9,0,00,,
        RW,Rwanda,250,,9,9,0,00,,
        ET,Ethiopia,251,,9,9,0,00,,
        SO,Somalia,252,,7,9,0,00,,
        DJ,Djibouti,253,,8,8,,00,,
        KE,Kenya,254,,7,10,0,000,,
        TZ,Tanzania,255,,9,9,0,000,,
        UG,Uganda,256,,9,9,0,000,,
        BI,Burundi,257,,8,8,,00,,
        MZ,Mozambique,258,,8,9,,00,,
        ZM,Zambia,260,,9,9,0,00,,
        MG,Madagascar,261,,9,9,0,00,,
        RE,Réunion,262,,9,9,0,00,,
        YT,Mayotte,262,262269;262639,9,9,0,00,,
        ZW,Zimbabwe,263,,5,10,0,00,,
        NA,Namibia,264,,8,10,0,00,,
        MW,Malawi,265,,7,9,0,00,,
        LS,Lesotho,266,,8,8,,00,,
        BW,Botswana,267,,7,8,,00,,
        SZ,Eswatini,268,,8,8,,00,,
        KM,Comoros,269,,7,7,,00,,
        ZA,South Africa,27,,9,9,0,00,,
        SH,Saint Helena,290,,4,5,,00,,
        TA,Tristan da Cunha,290,2908,4,5,,00,,
        ER,Eritrea,291,,7,7,0,00,,
        AW,Aruba,297,,7,7,,00,,
        FO,Faroe Islands,298,,6,6,,00,,
        GL,Greenland,299,,6,6,,00,,
        GR,Greece,30,,10,10,,00,,
        NL,Netherlands,31,,7,11,0,00,,
        BE,Belgium,32,,8,9,0,00,,
        FR,France,33,,9,9,0,00,,
        ES,Spain,34,,9,9,,00,,
        GI,Gibraltar,350,,8,8,,00,,
        PT,Portugal,351,,9,9,,00,,
        LU,Luxembourg,352,,4,11,,00,,
        IE,Ireland,353,,7,10,0,00,,
        IS,Iceland,354,,7,9,,00,,
        AL,Albania,355,,6,9,0,00,,
        MT,Malta,356,,8,8,,00,,
        CY,Cyprus,357,,8,8,,00,,
        FI,Finland,358,,5,12,0,00,990;994;999,
        AX,Åland Islands,358,35818,5,12,0,00,990;994;999,
        BG,Bulgaria,359,,6,9,0,00,,
        HU,Hungary,36,,8,9,06,00,,
        LT,Lithuania,370,,8,8,0,00,,
        LV,Latvia,371,,8,8,,00,,
        EE,Estonia,372,,7,10,,00,,
        MD,Moldova,373,,8,8,0,00,,
        AM,Armenia,374,,8,8,0,00,,
        BY,Belarus,375,,9,10,80,810,,
        AD,Andorra,376,,6,9,,00,,
        MC,Monaco,377,,8,9,0,00,,trunkopt
        SM,San Marino,378,,6,10,,00,,keeps0
        UA,Ukraine,380,,9,9,0,00,,
        RS,Serbia,381,,7,12,0,00,,
        ME,Montenegro,382,,8,8,0,00,,
        XK,Kosovo,383,,8,9,0,00,,
        HR,Croatia,385,,6,9,0,00,,
        SI,Slovenia,386,,8,8,0,00,,
        BA,Bosnia and Herzegovina,387,,8,9,0,00,,
        MK,North Macedonia,389,,8,8,0,00,,
        IT,Italy,39,,6,12,,00,,keeps0
        VA,Vatican City,39,3906698,6,12,,00,,keeps0
        RO,Romania,40,,9,9,0,00,,
        CH,Switzerland,41,,9,12,0,00,,
        CZ,Czechia,420,,9,12,,00,,
        SK,Slovakia,421,,9,9,0,00,,
        LI,Liechtenstein,423,,7,9,,00,,
        AT,Austria,43,,4,13,0,00,,
        GB,United Kingdom,44,,7,10,0,00,,
        GG,Guernsey,44,441481;447781;447839;4479111;4479117,10,10,0,00,,
        JE,Jersey,44,441534;447509;4477003;4477007;4477008;4477977;4477978;4477979;447829;447937,10,10,0,00,,
        IM,Isle of Man,44,441624;4474576;447524;447624;447924,10,10,0,00,,
        DK,Denmark,45,,8,8,,00,,
        SE,Sweden,46,,7,10,0,00,,
        NO,Norway,47,,8,12,,00,,
        SJ,Svalbard and Jan Mayen,47,4779,8,8,,00,,
        PL,Poland,48,,9,9,,00,,
        DE,Germany,49,,5,13,0,00,,
        FK,Falkland Islands,500,,5,5,,00,,
        BZ,Belize,501,,7,7,,00,,
        GT,Guatemala,502,,8,8,,00,,
        SV,El Salvador,503,,8,8,,00,,
        HN,Honduras,504,,8,8,,00,,
        NI,Nicaragua,505,,8,8,,00,,
        CR,Costa Rica,506,,8,8,,00,,
        PA,Panama,507,,7,8,,00,,
        PM,Saint Pierre and Miquelon,508,,6,6,0,00,,
        HT,Haiti,509,,8,8,,00,,
        PE,Peru,51,,8,9,0,00,,
        MX,Mexico,52,,10,10,,00,,
        CU,Cuba,53,,6,8,0,119,,
        AR,Argentina,54,,10,11,0,00,,
        BR,Brazil,55,,10,11,0,00,,
        CL,Chile,56,,9,11,,00,,
        CO,Colombia,57,,10,11,,009,007;005,
        VE,Venezuela,58,,10,10,0,00,,
        GP,Guadeloupe,590,,9,9,0,00,,
        BL,Saint Barthélemy,590,,9,9,0,00,,shared
        MF,Saint Martin,590,,9,9,0,00,,shared
        BO,Bolivia,591,,8,8,0,00,,
        GY,Guyana,592,,7,7,,001,,
        EC,Ecuador,593,,8,9,0,00,,
        GF,French Guiana,594,,9,9,0,00,,
        PY,Paraguay,595,,7,9,0,00,,
        MQ,Martinique,596,,9,9,0,00,,
        SR,Suriname,597,,6,7,,00,,
        UY,Uruguay,598,,7,8,0,00,,
        CW,Curaçao,599,5999,7,8,,00,,
        BQ,Caribbean Netherlands,599,5993;5994;5997,7,7,,00,,
        MY,Malaysia,60,,8,10,0,00,,
        AU,Australia,61,,6,10,0,0011,0014;0015;0018;0019,
        CX,Christmas Island,61,6189164,9,9,0,0011,0014;0015;0018;0019,
        CC,Cocos (Keeling) Islands,61,6189162,9,9,0,0011,0014;0015;0018;0019,
        ID,Indonesia,62,,7,12,0,001,007;008;009;017,
        PH,Philippines,63,,8,10,0,00,,
        NZ,New Zealand,64,,8,10,0,00,,
        SG,Singapore,65,,8,11,,000,001;008,
        TH,Thailand,66,,8,9,0,001,007;008;009,
        TL,Timor-Leste,670,,7,8,,00,,
        AQ,Antarctica,672,6721,6,6,,00,,
        NF,Norfolk Island,672,6723,6,6,,00,,
        BN,Brunei,673,,7,7,,00,,
        NR,Nauru,674,,7,7,,00,,
        PG,Papua New Guinea,675,,7,8,,00,,
        TO,Tonga,676,,5,7,,00,,
        SB,Solomon Islands,677,,5,7,,00,,
        VU,Vanuatu,678,,5,7,,00,,
        FJ,Fiji,679,,7,7,,00,,
        PW,Palau,680,,7,7,,011,,
        WF,Wallis and Futuna,681,,6,6,,00,,
        CK,Cook Islands,682,,5,5,,00,,
        NU,Niue,683,,4,7,,00,,
        WS,Samoa,685,,5,7,,0,,
        KI,Kiribati,686,,5,8,0,00,,
        NC,New Caledonia,687,,6,6,,00,,
        TV,Tuvalu,688,,5,7,,00,,
        PF,French Polynesia,689,,8,8,,00,,
        TK,Tokelau,690,,4,7,,00,,
        FM,Micronesia,691,,7,7,,00,,
        MH,Marshall Islands,692,,7,7,1,011,,trunkopt
        ,International Freephone Service,800,,8,8,,,,
        ,International Shared Cost Service,808,,8,8,,,,
        JP,Japan,81,,9,10,0,010,,
        KR,South Korea,82,,8,10,0,001,002;005;006;008;00700,
        VN,Vietnam,84,,9,10,0,00,,
        KP,North Korea,850,,8,10,0,00,,
        HK,Hong Kong,852,,8,9,,001,,
        MO,Macao,853,,8,8,,00,,
        KH,Cambodia,855,,8,9,0,00,,
        LA,Laos,856,,8,10,0,00,,
        CN,China,86,,9,11,0,00,,trunkopt
        ,Inmarsat,870,,9,9,,,,
        ,Universal Personal Telecommunications,878,,10,12,,,,
        BD,Bangladesh,880,,6,10,0,00,,
        ,Global Mobile Satellite System,881,,9,9,,,,
        ,International Networks,882,,7,12,,,,
        ,International Networks,883,,7,12,,,,
        TW,Taiwan,886,,8,9,0,002,005;006;007;009;019,
        ,Telecommunications for Disaster Relief (OCHA),888,,11,11,,,,
        TR,Türkiye,90,,10,10,0,00,,
        IN,India,91,,10,10,0,00,,trunkopt
        PK,Pakistan,92,,8,11,0,00,,
        AF,Afghanistan,93,,9,9,0,00,,
        LK,Sri Lanka,94,,9,9,0,00,,
        MM,Myanmar,95,,6,10,0,00,,
        MV,Maldives,960,,7,7,,00,,
        LB,Lebanon,961,,7,8,0,00,,
        JO,Jordan,962,,8,9,0,00,,
        SY,Syria,963,,8,9,0,00,,
        IQ,Iraq,964,,8,10,0,00,,
        KW,Kuwait,965,,7,8,,00,,
        SA,Saudi Arabia,966,,9,10,0,00,,
        YE,Yemen,967,,7,9,0,00,,
        OM,Oman,968,,8,8,,00,,
        PS,Palestine,970,,8,9,0,00,,
        AE,United Arab Emirates,971,,8,9,0,00,,
        IL,Israel,972,,8,10,0,00,012;013;014;018;019,
        BH,Bahrain,973,,8,8,,00,,
        QA,Qatar,974,,7,8,,00,,
        BT,Bhutan,975,,7,8,,00,,
        MN,Mongolia,976,,7,10,0,001,,
        NP,Nepal,977,,8,10,0,00,,
        ,International Premium Rate Service,979,,9,9,,,,
        IR,Iran,98,,10,10,0,00,,
        TJ,Tajikistan,992,,9,9,8,810,,
        TM,Turkmenistan,993,,8,8,8,810,,
        AZ,Azerbaijan,994,,9,9,0,00,,
        GE,Georgia,995,,9,9,0,00,,trunkopt
        KG,Kyrgyzstan,996,,9,10,0,00,,
        UZ,Uzbekistan,998,,9,9,8,810,,
        """
}
