//! What the pipeline checked while it decided, in the order it checked: the one source for
//! explanations (`tools::explain` renders it; nothing else encodes the order of checks).
//!
//! Recording is asked for per decision (`pipeline::decide_traced`); the plain `decide`
//! records nothing and allocates nothing, so Envoy's hot path pays one branch per check.

use crate::core::reasons::{Denial, Reason};

/// One check of SPEC §4, in the order the pipeline runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    McpBody,
    McpMessage,
    McpHeaders,
    Route,
    TokenPresent,
    TokenSingle,
    TokenSize,
    TokenShape,
    VerifyIssuer,
    VerifyTyp,
    VerifyAlg,
    VerifyKeys,
    VerifyKid,
    VerifyKeyAlg,
    VerifySignature,
    ClaimsShape,
    ClaimsAud,
    ClaimsExp,
    ClaimsNbfIat,
    ClaimsLifetime,
    ChainDepth,
    ChainCycle,
    ChainTrustDomain,
    ChainAllowlist,
    ChainMayAct,
    Revocation,
    DpopScheme,
    DpopProof,
    DpopReplay,
    BindingRequired,
    BindingCnf,
    BindingPeer,
    RequireDelegated,
    RequireHumanSubject,
    RequireActors,
    RequireMaxChainDepth,
    RequireScopes,
    RequireClaims,
    RequireFreshAuth,
    RequireArguments,
}

impl Step {
    /// Every step, in SPEC order (what a view lists for the steps a decision never reached).
    pub const ALL: [Step; 40] = [
        Step::McpBody,
        Step::McpMessage,
        Step::McpHeaders,
        Step::Route,
        Step::TokenPresent,
        Step::TokenSingle,
        Step::TokenSize,
        Step::TokenShape,
        Step::VerifyIssuer,
        Step::VerifyTyp,
        Step::VerifyAlg,
        Step::VerifyKeys,
        Step::VerifyKid,
        Step::VerifyKeyAlg,
        Step::VerifySignature,
        Step::ClaimsShape,
        Step::ClaimsAud,
        Step::ClaimsExp,
        Step::ClaimsNbfIat,
        Step::ClaimsLifetime,
        Step::ChainDepth,
        Step::ChainCycle,
        Step::ChainTrustDomain,
        Step::ChainAllowlist,
        Step::ChainMayAct,
        Step::Revocation,
        Step::DpopScheme,
        Step::DpopProof,
        Step::DpopReplay,
        Step::BindingRequired,
        Step::BindingCnf,
        Step::BindingPeer,
        Step::RequireDelegated,
        Step::RequireHumanSubject,
        Step::RequireActors,
        Step::RequireMaxChainDepth,
        Step::RequireScopes,
        Step::RequireClaims,
        Step::RequireFreshAuth,
        Step::RequireArguments,
    ];

    /// The stable id shown to people (`actwarden check --explain`, the playground).
    pub fn id(self) -> &'static str {
        use Step::*;
        match self {
            McpBody => "mcp.body_size",
            McpMessage => "mcp.message",
            McpHeaders => "mcp.headers",
            Route => "route",
            TokenPresent => "token.present",
            TokenSingle => "token.single",
            TokenSize => "token.size",
            TokenShape => "token.shape",
            VerifyIssuer => "verify.issuer",
            VerifyTyp => "verify.typ",
            VerifyAlg => "verify.alg",
            VerifyKeys => "verify.keys",
            VerifyKid => "verify.kid",
            VerifyKeyAlg => "verify.key_alg",
            VerifySignature => "verify.signature",
            ClaimsShape => "claims.shape",
            ClaimsAud => "claims.aud",
            ClaimsExp => "claims.exp",
            ClaimsNbfIat => "claims.nbf_iat",
            ClaimsLifetime => "claims.lifetime",
            ChainDepth => "chain.depth",
            ChainCycle => "chain.cycle",
            ChainTrustDomain => "chain.trust_domain",
            ChainAllowlist => "chain.allowlist",
            ChainMayAct => "chain.may_act",
            Revocation => "revocation",
            DpopScheme => "binding.dpop_scheme",
            DpopProof => "binding.dpop_proof",
            DpopReplay => "binding.dpop_replay",
            BindingRequired => "binding.required",
            BindingCnf => "binding.cnf",
            BindingPeer => "binding.peer",
            RequireDelegated => "require.delegated",
            RequireHumanSubject => "require.human_subject",
            RequireActors => "require.actors",
            RequireMaxChainDepth => "require.max_chain_depth",
            RequireScopes => "require.scopes",
            RequireClaims => "require.claims",
            RequireFreshAuth => "require.fresh_auth_s",
            RequireArguments => "require.arguments",
        }
    }

    /// The numbered stage of SPEC §4 the step belongs to (1–8; 0 for the MCP checks that
    /// SPEC §9 puts before step 1).
    pub fn stage(self) -> u8 {
        use Step::*;
        match self {
            McpBody | McpMessage | McpHeaders => 0,
            Route => 1,
            TokenPresent | TokenSingle | TokenSize | TokenShape => 2,
            VerifyIssuer | VerifyTyp | VerifyAlg | VerifyKeys | VerifyKid | VerifyKeyAlg
            | VerifySignature => 3,
            ClaimsShape | ClaimsAud | ClaimsExp | ClaimsNbfIat | ClaimsLifetime => 4,
            ChainDepth | ChainCycle | ChainTrustDomain | ChainAllowlist | ChainMayAct => 5,
            Revocation => 6,
            DpopScheme | DpopProof | DpopReplay | BindingRequired | BindingCnf | BindingPeer => 7,
            RequireDelegated | RequireHumanSubject | RequireActors | RequireMaxChainDepth
            | RequireScopes | RequireClaims | RequireFreshAuth | RequireArguments => 8,
        }
    }
}

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The first failure: its reason is the decision's.
    Failed(Reason),
    /// The policy (or an anonymous allow) leaves nothing to check here.
    NotApplicable,
}

/// One check the pipeline ran, with a short note for people where the outcome needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub step: Step,
    pub outcome: Outcome,
    pub note: Option<&'static str>,
}

/// The checks a decision ran, in order; the last one is the failure on a deny.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    checks: Vec<Check>,
}

impl Trace {
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }
}

/// What the pipeline records into; off unless a trace was asked for.
pub(crate) struct Recorder {
    checks: Option<Vec<Check>>,
}

impl Recorder {
    pub(crate) fn off() -> Self {
        Recorder { checks: None }
    }

    pub(crate) fn on() -> Self {
        Recorder {
            checks: Some(Vec::with_capacity(Step::ALL.len())),
        }
    }

    /// Whether checks are being recorded (`decide_traced`).
    pub(crate) fn is_on(&self) -> bool {
        self.checks.is_some()
    }

    fn push(&mut self, step: Step, outcome: Outcome, note: Option<&'static str>) {
        if let Some(checks) = &mut self.checks {
            checks.push(Check {
                step,
                outcome,
                note,
            });
        }
    }

    pub(crate) fn pass(&mut self, step: Step) {
        self.push(step, Outcome::Passed, None);
    }

    pub(crate) fn pass_noted(&mut self, step: Step, note: &'static str) {
        self.push(step, Outcome::Passed, Some(note));
    }

    pub(crate) fn not_applicable(&mut self, step: Step, note: &'static str) {
        self.push(step, Outcome::NotApplicable, Some(note));
    }

    /// Records `step` as failed and hands the denial back (`return Err(t.fail(…))`).
    pub(crate) fn fail(&mut self, step: Step, denial: Denial) -> Denial {
        self.push(step, Outcome::Failed(denial.reason()), None);
        denial
    }

    /// Records the result of one check and passes it on (`t.check(step, …)?`).
    pub(crate) fn check<T>(&mut self, step: Step, result: Result<T, Denial>) -> Result<T, Denial> {
        match result {
            Ok(value) => {
                self.pass(step);
                Ok(value)
            }
            Err(denial) => Err(self.fail(step, denial)),
        }
    }

    /// Adds a note to a check already recorded, once a later step shows why it passed.
    pub(crate) fn note(&mut self, step: Step, note: &'static str) {
        if let Some(check) = self
            .checks
            .as_mut()
            .and_then(|c| c.iter_mut().rev().find(|c| c.step == step))
        {
            check.note = Some(note);
        }
    }

    pub(crate) fn finish(self) -> Option<Trace> {
        self.checks.map(|checks| Trace { checks })
    }
}
