"""Error codes of the built-in contracts, with the rule each one enforces.

`CATALOGUE` maps every code a contract raises to (rule id or None, English
message, zh-CN message). The API layer looks messages up here by code; the
contracts only raise `ContractError(code, rule, **details)`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from node.execution import ContractError

CATALOGUE: dict[str, tuple[str | None, str, str]] = {
    # Envelope, sender and payload.
    "invalid_payload": (None, "The payload is invalid for this transaction type.", "交易载荷不符合该交易类型的格式。"),
    "unknown_tx_type": (None, "Unknown transaction type.", "未知的交易类型。"),
    "unknown_sender": (None, "The sender key belongs to no member or registered subject.", "发送方公钥不属于任何成员或已登记的数据主体。"),
    "sender_suspended": ("G3", "The sending member is suspended.", "发送方成员已被暂停。"),
    "sender_removed": ("G1", "The sending member has been removed from the consortium.", "发送方成员已被移出联盟。"),
    "role_not_allowed": (None, "The sender's role may not send this transaction type.", "发送方角色无权发送此类交易。"),
    "not_authorized": (None, "The sender may not act on this record.", "发送方无权操作该记录。"),
    "duplicate_id": (None, "A record with this id already exists.", "该编号的记录已存在。"),
    "not_found": (None, "The referenced record does not exist.", "引用的记录不存在。"),
    "invalid_date": (None, "The date is not a valid YYYY-MM-DD date or is out of range.", "日期不是有效的 YYYY-MM-DD 日期或超出范围。"),
    "personal_data_in_payload": (
        None,
        "A transaction field contains what looks like an ID-card, mobile phone or bank card number, and personal data never goes on chain: keep it in the off-chain store and send only ids, reason codes and hashes (details name the field).",
        "交易字段中含有疑似身份证号、手机号或银行卡号，个人信息不得上链：请将其保存在链下存储中，链上只提交编号、原因代码和哈希（details 中列出该字段）。",
    ),
    # Registry and governance.
    "unknown_member": (None, "No member with this id.", "不存在该成员编号。"),
    "member_already_suspended": ("G3", "The member is already suspended.", "该成员已处于暂停状态。"),
    "member_not_suspended": ("G3", "The member is not suspended.", "该成员未被暂停。"),
    "cannot_suspend_regulator": ("G3", "A regulator cannot be suspended.", "监管机构不能被暂停。"),
    "invalid_genesis": (None, "The genesis file is invalid.", "创世文件无效。"),
    "unknown_param": ("G1", "Unknown consortium parameter.", "未知的联盟参数。"),
    "invalid_param": ("G1", "Invalid value for a consortium parameter.", "联盟参数取值无效。"),
    "proposal_closed": ("G1", "The proposal is no longer open for votes.", "该提案已不再接受投票。"),
    "already_voted": ("G1", "The member has already voted on this proposal.", "该成员已对此提案投票。"),
    "not_a_voter": ("G1", "The member was not a voting member when the proposal was made.", "提案发起时该成员不是有表决权的成员。"),
    "invalid_action": ("G1", "The governance action is invalid.", "治理动作无效。"),
    # Subjects, consent and credit data.
    "unknown_subject": (None, "No registered subject with this id.", "不存在该数据主体编号。"),
    "subject_key_in_use": (None, "The subject key is already registered.", "该数据主体公钥已被登记。"),
    "consent_required": ("D1", "No active consent from the subject covers this processing.", "没有该数据主体的有效授权覆盖此处理。"),
    "written_consent_required": ("D4", "Income, deposit and property data need the subject's explicit written consent.", "收入、存款、财产信息须取得数据主体明确的书面同意。"),
    "forbidden_field": ("D3", "Religion, genes, fingerprints, blood type, disease and medical history may not be collected.", "不得采集宗教信仰、基因、指纹、血型、疾病和病史信息。"),
    "evidence_required": ("D1", "A member acting for a subject must attach evidence.", "成员代数据主体操作时须附证据摘要。"),
    "consent_inactive": ("D11", "The consent is already revoked or expired.", "该授权已撤回或已过期。"),
    "agency_not_licensed": ("D14", "The credit agency is not registered as licensed.", "该信用评估机构未登记为持牌机构。"),
    "points_mismatch": ("D12", "The score must equal the base points plus the sum of input points.", "评分须等于基础分加各输入项分数之和。"),
    "notice_required": ("D5", "A negative record needs a prior notice to the subject.", "报送不良信息前须事先告知数据主体。"),
    "not_negative_record": ("D7", "A statement may be attached only to a negative record.", "异议声明只能附在不良记录上。"),
    "subject_erased": ("D13", "The subject's data was erased, so no new consent, processing or access is accepted.", "该数据主体的信息已删除，不再接受新的授权、处理或访问。"),
    "subject_frozen": ("D13", "The subject's data is frozen under a retention duty: it is kept but not processed until the retention date.", "该数据主体的信息因法定保存义务被冻结：保存期届满前仅保存、不处理。"),
    "retention_applies": ("D13", "The subject has an open loan whose data must be kept: send mode freeze with retain_until instead.", "该数据主体仍有未结清贷款，相关信息须依法保存：请改用 freeze 模式并填写 retain_until。"),
    "free_reports_used": ("D8", "The subject has used this year's free reports of its own data: set paid to true to query again.", "本年度免费查询本人报告的次数已用完：如需再次查询，请将 paid 设为 true。"),
    # Loans and repayments.
    "schedule_mismatch": ("L1", "The schedule's instalments do not sum to principal plus interest.", "还款计划各期之和不等于本金加利息。"),
    "invalid_schedule": ("L4", "The schedule's instalments must be numbered 1..n with increasing due dates.", "还款计划各期须从 1 连续编号且到期日递增。"),
    "loan_closed": (None, "The loan is closed.", "该贷款已结清或关闭。"),
    "loan_written_off": ("L7", "The loan is written off.", "该贷款已核销。"),
    "payment_reversed": ("L8", "The repayment is already reversed.", "该还款已冲正。"),
    "hardship_too_long": ("L10", "A hardship plan may run at most the maximum number of months.", "困难还款计划期限超过上限。"),
    "invalid_amount": ("L1", "The amount is invalid.", "金额无效。"),
    "unsupported_currency": ("L1", "Only CNY is supported.", "仅支持人民币（CNY）。"),
    "reversal_before_plan": ("L8", "A repayment booked before the current hardship plan cannot be reversed.", "困难还款计划生效前入账的还款不能冲正。"),
    "not_creditor": ("L12", "Only the loan's creditor may do this.", "只有该贷款的债权人可以执行此操作。"),
    # Collection.
    "mandate_inactive": ("C9", "The mandate is not active on this date.", "委外授权在该日期无效。"),
    "evaluation_missing": ("C9", "The agency has no evaluation by the creditor within the last 365 days.", "该机构在过去 365 天内没有债权人的评估。"),
    "not_assigned": ("C2", "Only the assigned agency or the creditor of an in-house case may act on this case.", "只有被分配的催收机构，或自催案件的债权人，可以操作该案件。"),
    "case_closed": ("C12", "The case is closed.", "该案件已结案。"),
    "case_not_accepted": ("C2", "The assigned agency must accept the case first.", "被分配的催收机构须先接受案件。"),
    "case_already_accepted": ("C2", "The case is already accepted.", "该案件已被接受。"),
    "contact_hours": ("C3", "No contact attempt outside the allowed hours, debtor local time.", "不得在允许时段以外（债务人当地时间）联系。"),
    "voice_limit": ("C4", "The daily limit of effective voice interactions with this debtor is reached.", "当日与该债务人的有效通话次数已达上限。"),
    "debt_call_limit": ("C15", "The limit of calls about this debt in the rolling window is reached.", "滚动期间内就该笔债务的通话次数已达上限。"),
    "dial_limit": ("C5", "The daily limit of dials to this number is reached.", "当日拨打该号码的次数已达上限。"),
    "target_not_allowed": ("C6", "The contact target is not the debtor, a named guarantor or an allowed contact person.", "联系对象不是债务人、合同列明的担保人或允许的联系人。"),
    "contact_person_debt_data": ("C6", "A record of contact with a contact person may carry no debt data.", "与联系人的联系记录不得包含债务信息。"),
    "contact_blocked": ("C7", "This contact person refused and is blocked.", "该联系人已拒绝，已被永久屏蔽。"),
    "visit_needs_two": ("C8", "A field visit needs two distinct collector ids.", "外访须有两名不同的催收员。"),
    "dispute_open": ("C13", "A dispute on this debt is open, so collection and negative reporting are paused.", "该债务存在未决异议，催收和不良报送已暂停。"),
    "agency_suspended": ("C14", "The agency is suspended.", "该机构已被暂停。"),
    "promise_open": ("C11", "An earlier promise on this case is still open.", "该案件已有未到期的还款承诺。"),
    "invalid_stage": ("C17", "A case stage may only move forward, one recorded step at a time.", "案件阶段只能按顺序向前推进。"),
    # Disputes and complaints.
    "dispute_closed": ("D9", "The dispute is already resolved.", "该异议已处理完毕。"),
    "complaint_closed": ("C14", "The complaint is already answered.", "该投诉已答复。"),
    "not_collector": ("C14", "A complaint must name a collection agency member.", "投诉须指向一家催收机构成员。"),
}


def fail(code: str, rule: str | None = None, **details: Any) -> NoReturn:
    """Raise the ContractError for `code`; the rule defaults to the catalogue's."""
    if code not in CATALOGUE:
        raise KeyError(f"error code {code!r} is missing from the catalogue")
    raise ContractError(code, rule or CATALOGUE[code][0], **details)


def message_for(code: str, language: str = "zh-CN") -> str:
    """Return the localized message for `code` (zh-CN or en), or the code itself if unknown."""
    entry = CATALOGUE.get(code)
    if entry is None:
        return code
    rule, english, chinese = entry
    text = chinese if language.lower().startswith("zh") else english
    return f"{text} ({rule})" if rule else text
