//! The checkout saga's decisions, without any I/O: given where an order stands and what the
//! last call answered, what happens next. The worker (`saga.rs`) claims orders, makes the
//! call [`plan`] names, turns the answer into an [`Outcome`], and records the [`Action`]
//! [`decide`] returns; everything that can be decided is decided here, so it is tested here.
//!
//! ```text
//! PENDING --reserve--> STOCK_RESERVED --charge--> PAID --commit--> CONFIRMED
//!    |                       |                      |                  |
//!    | out of stock          | declined / timeout   | expired          | customer cancels
//!    v                       v                      v                  v
//! CANCELLED <------------ CANCELLING (resolve, refund, release) <------+
//! ```
//!
//! A forward step (reserve, charge, commit) that fails transiently is retried with back-off
//! up to `max_attempts`, then the order is cancelled with what it may owe. Compensation is
//! retried until it succeeds.

use std::time::Duration;

use platform_contracts::CancellationReason;
use uuid::Uuid;

use crate::config::SagaSettings;
use crate::domain::{Compensation, OrderStatus};

/// What the saga needs to know about an order to decide; the worker reads it from the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SagaState {
    /// Where the order stands.
    pub status: OrderStatus,
    /// What it still owes, while CANCELLING.
    pub owed: Compensation,
    /// Failed attempts of the current step so far.
    pub attempts: i32,
    /// The order's total, in minor units (what a refund gives back).
    pub total_minor: i64,
    /// Refunded so far, in minor units.
    pub refunded_minor: i64,
}

/// A call the saga makes, each idempotent and keyed by the order id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ask the inventory to hold the order's items.
    Reserve,
    /// Charge the order's card.
    Charge,
    /// Turn the reservation into a sale.
    Commit,
    /// Charge again with the same key, to learn a lost charge's outcome.
    ResolvePayment,
    /// Give the money back.
    Refund,
    /// Give the stock back.
    ReleaseStock,
}

impl Step {
    /// The step's name in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Charge => "charge",
            Self::Commit => "commit",
            Self::ResolvePayment => "resolve_payment",
            Self::Refund => "refund",
            Self::ReleaseStock => "release",
        }
    }
}

/// What the worker should do with an order it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Make this call, then ask [`decide`].
    Call(Step),
    /// Record this without calling anyone.
    Record(Action),
    /// Nothing: the order is CONFIRMED or CANCELLED.
    Finished,
}

/// What a call answered, in the saga's words; the worker translates the gRPC answer. A
/// `String` is the detail worth keeping, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The inventory holds the items.
    Reserved,
    /// The inventory has too few of an item.
    OutOfStock(String),
    /// The inventory refused the reservation for another reason.
    ReservationRefused(String),
    /// The reservation exists but is no longer held (it lapsed, or was released).
    ReservationExpired(String),
    /// The card was charged (the payment's id, when the answer carried a valid one).
    Charged {
        /// The captured payment.
        payment_id: Option<Uuid>,
    },
    /// The charge failed or was refused.
    Declined(String),
    /// The reservation is a sale.
    Committed,
    /// The money went back.
    Refunded {
        /// Everything refunded for the payment so far, when the answer said.
        refunded_total_minor: Option<i64>,
    },
    /// The payment service refused the refund: there is nothing to give back.
    NothingToRefund(String),
    /// The stock went back (or there was none to return).
    StockReleased,
    /// No answer within the deadline: the call may or may not have taken effect.
    TimedOut(Duration),
    /// The service was unreachable or failing: no effect is known.
    Unavailable(String),
    /// The downstream's breaker is open: no call was made; try after the delay.
    BreakerOpen(Duration),
}

/// Why an order is being cancelled, and what that leaves to undo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    /// The reason, as the `orders.cancelled` event states it.
    pub reason: CancellationReason,
    /// In words.
    pub detail: String,
    /// What must be undone before the order is CANCELLED.
    pub compensation: Compensation,
}

/// What to record about an order after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Move forward, recording the captured payment once known.
    Advance {
        /// The next status.
        to: OrderStatus,
        /// The captured payment, when this step learnt it.
        payment_id: Option<Uuid>,
    },
    /// Give up the sale: CANCELLING while something is owed, else CANCELLED.
    Cancel(Cancellation),
    /// One piece of compensation is done: CANCELLED once nothing is owed.
    Compensated {
        /// What is left to undo.
        still_owed: Compensation,
        /// Refunded so far, in minor units.
        refunded_minor: i64,
        /// A payment that turned out to be captured (it must be refunded).
        payment_id: Option<Uuid>,
    },
    /// A transient failure: the same step again after the delay, one more attempt counted.
    Retry {
        /// How long to wait.
        after: Duration,
        /// What went wrong, for the order's `last_error`.
        error: String,
    },
    /// No call was made (a breaker is open): the same step after the delay, no attempt
    /// counted.
    Postpone {
        /// How long to wait.
        after: Duration,
    },
}

impl Action {
    /// The status an order in `from` has once this is recorded.
    pub fn status_after(&self, from: OrderStatus) -> OrderStatus {
        match self {
            Self::Advance { to, .. } => *to,
            Self::Cancel(cancellation) => cancellation.compensation.status(),
            Self::Compensated { still_owed, .. } => still_owed.status(),
            Self::Retry { .. } | Self::Postpone { .. } => from,
        }
    }
}

/// What to do next with an order the worker holds.
pub fn plan(state: &SagaState) -> Plan {
    match state.status {
        OrderStatus::Pending => Plan::Call(Step::Reserve),
        OrderStatus::StockReserved => Plan::Call(Step::Charge),
        OrderStatus::Paid => Plan::Call(Step::Commit),
        // Learning a lost charge's outcome comes first: it decides whether a refund is owed.
        OrderStatus::Cancelling if state.owed.resolve_payment => Plan::Call(Step::ResolvePayment),
        OrderStatus::Cancelling if state.owed.refund => Plan::Call(Step::Refund),
        OrderStatus::Cancelling if state.owed.release_stock => Plan::Call(Step::ReleaseStock),
        OrderStatus::Cancelling => Plan::Record(Action::Compensated {
            still_owed: Compensation::NOTHING,
            refunded_minor: state.refunded_minor,
            payment_id: None,
        }),
        OrderStatus::Confirmed | OrderStatus::Cancelled => Plan::Finished,
    }
}

/// What to record after `step` (the one [`plan`] named for `state`) answered `outcome`.
pub fn decide(state: &SagaState, step: Step, outcome: Outcome, settings: &SagaSettings) -> Action {
    let decided = match (step, outcome) {
        (_, Outcome::BreakerOpen(after)) => return Action::Postpone { after },
        (Step::Reserve, outcome) => after_reserve(outcome),
        (Step::Charge, outcome) => after_charge(outcome),
        (Step::Commit, outcome) => after_commit(outcome),
        (Step::ResolvePayment | Step::Refund | Step::ReleaseStock, outcome) => {
            after_compensation(state, step, outcome)
        }
    };
    decided.unwrap_or_else(|outcome| retry_or_give_up(state, step, &outcome, settings))
}

/// Each `after_*` decides on the answers its step can give; `Err` hands back an outcome that
/// is a failed attempt (no answer, or one that does not fit the step).
type Decided = Result<Action, Outcome>;

fn cancel(reason: CancellationReason, detail: String, compensation: Compensation) -> Action {
    Action::Cancel(Cancellation {
        reason,
        detail,
        compensation,
    })
}

fn after_reserve(outcome: Outcome) -> Decided {
    match outcome {
        Outcome::Reserved => Ok(Action::Advance {
            to: OrderStatus::StockReserved,
            payment_id: None,
        }),
        Outcome::OutOfStock(detail) => Ok(cancel(
            CancellationReason::OutOfStock,
            detail,
            Compensation::NOTHING,
        )),
        Outcome::ReservationRefused(detail) => Ok(cancel(
            CancellationReason::Other,
            detail,
            Compensation::NOTHING,
        )),
        // An earlier attempt reserved, and the reservation lapsed before this one: nothing
        // is held any more.
        Outcome::ReservationExpired(detail) => Ok(cancel(
            CancellationReason::ReservationExpired,
            detail,
            Compensation::NOTHING,
        )),
        failed => Err(failed),
    }
}

fn after_charge(outcome: Outcome) -> Decided {
    match outcome {
        Outcome::Charged { payment_id } => Ok(Action::Advance {
            to: OrderStatus::Paid,
            payment_id,
        }),
        Outcome::Declined(detail) => Ok(cancel(
            CancellationReason::PaymentDeclined,
            detail,
            Compensation::RELEASE_STOCK,
        )),
        // The charge may still capture after our deadline: learn its outcome (and refund it)
        // while undoing, rather than keep the customer waiting on a slow card.
        Outcome::TimedOut(deadline) => Ok(cancel(
            CancellationReason::PaymentTimeout,
            format!("the payment did not answer within {deadline:?}"),
            Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK,
        )),
        failed => Err(failed),
    }
}

fn after_commit(outcome: Outcome) -> Decided {
    match outcome {
        Outcome::Committed => Ok(Action::Advance {
            to: OrderStatus::Confirmed,
            payment_id: None,
        }),
        Outcome::ReservationExpired(detail) => Ok(cancel(
            CancellationReason::ReservationExpired,
            detail,
            Compensation::REFUND_AND_RELEASE_STOCK,
        )),
        failed => Err(failed),
    }
}

/// One piece of compensation done: the same debt without that piece.
fn after_compensation(state: &SagaState, step: Step, outcome: Outcome) -> Decided {
    let owed = state.owed;
    let (still_owed, refunded_minor, payment_id) = match (step, outcome) {
        (Step::ResolvePayment, Outcome::Charged { payment_id }) => (
            Compensation {
                resolve_payment: false,
                refund: true,
                ..owed
            },
            state.refunded_minor,
            payment_id,
        ),
        (Step::ResolvePayment, Outcome::Declined(_)) => (
            Compensation {
                resolve_payment: false,
                ..owed
            },
            state.refunded_minor,
            None,
        ),
        (
            Step::Refund,
            Outcome::Refunded {
                refunded_total_minor,
            },
        ) => (
            Compensation {
                refund: false,
                ..owed
            },
            refunded_total_minor.unwrap_or(state.total_minor),
            None,
        ),
        (Step::Refund, Outcome::NothingToRefund(_)) => (
            Compensation {
                refund: false,
                ..owed
            },
            state.refunded_minor,
            None,
        ),
        (Step::ReleaseStock, Outcome::StockReleased) => (
            Compensation {
                release_stock: false,
                ..owed
            },
            state.refunded_minor,
            None,
        ),
        (_, failed) => return Err(failed),
    };
    Ok(Action::Compensated {
        still_owed,
        refunded_minor,
        payment_id,
    })
}

/// A failed attempt: retry after a back-off, or, when a forward step has used its last
/// attempt, cancel with what it may leave to undo.
fn retry_or_give_up(
    state: &SagaState,
    step: Step,
    outcome: &Outcome,
    settings: &SagaSettings,
) -> Action {
    let error = match outcome {
        Outcome::TimedOut(deadline) => format!("no answer within {deadline:?}"),
        Outcome::Unavailable(error) => error.clone(),
        // The worker never pairs these; if it did, the step failed rather than be guessed.
        other => format!(
            "an answer that does not fit the {} step: {other:?}",
            step.name()
        ),
    };
    let attempt = state.attempts.saturating_add(1);
    match when_retries_run_out(step) {
        Some((reason, detail, compensation)) if attempt >= settings.max_attempts => {
            Action::Cancel(Cancellation {
                reason,
                detail: format!("{detail} (after {attempt} attempts: {error})"),
                compensation,
            })
        }
        _ => Action::Retry {
            after: settings.retry_delay(attempt),
            error,
        },
    }
}

/// How a forward step ends once its attempts are used up. Compensation never gives up:
/// that would keep a customer's money or stock.
fn when_retries_run_out(step: Step) -> Option<(CancellationReason, &'static str, Compensation)> {
    match step {
        // A lost answer may hide a reservation that was made: release it.
        Step::Reserve => Some((
            CancellationReason::Other,
            "the inventory did not answer",
            Compensation::RELEASE_STOCK,
        )),
        // Likewise a charge that captured: learn its outcome before closing.
        Step::Charge => Some((
            CancellationReason::PaymentTimeout,
            "the payment service did not answer",
            Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK,
        )),
        Step::Commit => Some((
            CancellationReason::ReservationExpired,
            "the reservation could not be committed in time",
            Compensation::REFUND_AND_RELEASE_STOCK,
        )),
        Step::ResolvePayment | Step::Refund | Step::ReleaseStock => None,
    }
}

/// The customer asks to cancel: only a CONFIRMED order can be, and it owes a refund and its
/// stock back. `Err` says why not, in words.
pub fn cancel_at_customer_request(status: OrderStatus) -> Result<Cancellation, String> {
    if status == OrderStatus::Confirmed {
        Ok(Cancellation {
            reason: CancellationReason::CustomerRequest,
            detail: "cancelled at the customer's request".to_owned(),
            compensation: Compensation::REFUND_AND_RELEASE_STOCK,
        })
    } else {
        Err(format!(
            "only a confirmed order can be cancelled; this one is {status}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTAL: i64 = 2500;

    fn settings() -> SagaSettings {
        SagaSettings {
            max_attempts: 3,
            retry_base_ms: 100,
            ..SagaSettings::default()
        }
    }

    fn order(status: OrderStatus) -> SagaState {
        SagaState {
            status,
            owed: Compensation::NOTHING,
            attempts: 0,
            total_minor: TOTAL,
            refunded_minor: 0,
        }
    }

    fn cancelling(owed: Compensation) -> SagaState {
        SagaState {
            owed,
            ..order(OrderStatus::Cancelling)
        }
    }

    /// Plans the step for `state` and decides on `outcome`.
    fn after(state: &SagaState, outcome: Outcome) -> Action {
        let Plan::Call(step) = plan(state) else {
            panic!("{state:?} makes no call");
        };
        decide(state, step, outcome, &settings())
    }

    fn cancellation(action: &Action) -> &Cancellation {
        match action {
            Action::Cancel(cancellation) => cancellation,
            other => panic!("expected a cancellation, got {other:?}"),
        }
    }

    // The happy path.

    #[test]
    fn a_pending_order_reserves_its_stock_first() {
        assert_eq!(
            plan(&order(OrderStatus::Pending)),
            Plan::Call(Step::Reserve)
        );
    }

    #[test]
    fn a_reserved_order_moves_to_stock_reserved() {
        let action = after(&order(OrderStatus::Pending), Outcome::Reserved);
        assert_eq!(
            action,
            Action::Advance {
                to: OrderStatus::StockReserved,
                payment_id: None
            }
        );
    }

    #[test]
    fn an_order_with_stock_reserved_is_charged_next() {
        assert_eq!(
            plan(&order(OrderStatus::StockReserved)),
            Plan::Call(Step::Charge)
        );
    }

    #[test]
    fn a_captured_charge_moves_the_order_to_paid_with_its_payment() {
        let payment_id = Uuid::now_v7();
        let action = after(
            &order(OrderStatus::StockReserved),
            Outcome::Charged {
                payment_id: Some(payment_id),
            },
        );
        assert_eq!(
            action,
            Action::Advance {
                to: OrderStatus::Paid,
                payment_id: Some(payment_id)
            }
        );
    }

    #[test]
    fn a_paid_order_commits_its_reservation_next() {
        assert_eq!(plan(&order(OrderStatus::Paid)), Plan::Call(Step::Commit));
    }

    #[test]
    fn a_committed_reservation_confirms_the_order() {
        let action = after(&order(OrderStatus::Paid), Outcome::Committed);
        assert_eq!(
            action,
            Action::Advance {
                to: OrderStatus::Confirmed,
                payment_id: None
            }
        );
        assert_eq!(
            action.status_after(OrderStatus::Paid),
            OrderStatus::Confirmed
        );
    }

    #[test]
    fn confirmed_and_cancelled_orders_need_nothing_more() {
        assert_eq!(plan(&order(OrderStatus::Confirmed)), Plan::Finished);
        assert_eq!(plan(&order(OrderStatus::Cancelled)), Plan::Finished);
    }

    // PENDING -> CANCELLED.

    #[test]
    fn an_order_beyond_the_stock_is_cancelled_with_nothing_to_undo() {
        let action = after(
            &order(OrderStatus::Pending),
            Outcome::OutOfStock("MUG-1: 1 available, 2 asked".to_owned()),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::OutOfStock);
        assert_eq!(cancellation.detail, "MUG-1: 1 available, 2 asked");
        assert_eq!(cancellation.compensation, Compensation::NOTHING);
        assert_eq!(
            action.status_after(OrderStatus::Pending),
            OrderStatus::Cancelled
        );
    }

    #[test]
    fn a_reservation_refused_for_another_reason_cancels_the_order_as_other() {
        let action = after(
            &order(OrderStatus::Pending),
            Outcome::ReservationRefused("the order could not be reserved: bad sku".to_owned()),
        );
        assert_eq!(cancellation(&action).reason, CancellationReason::Other);
        assert_eq!(
            action.status_after(OrderStatus::Pending),
            OrderStatus::Cancelled
        );
    }

    #[test]
    fn a_reservation_that_lapsed_between_two_reserve_attempts_cancels_with_nothing_to_release() {
        let action = after(
            &order(OrderStatus::Pending),
            Outcome::ReservationExpired("the stock reservation is EXPIRED".to_owned()),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::ReservationExpired);
        assert_eq!(cancellation.compensation, Compensation::NOTHING);
    }

    // STOCK_RESERVED -> CANCELLING.

    #[test]
    fn a_declined_card_cancels_the_order_and_releases_its_stock() {
        let action = after(
            &order(OrderStatus::StockReserved),
            Outcome::Declined("the payment failed: insufficient_funds".to_owned()),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::PaymentDeclined);
        assert_eq!(cancellation.compensation, Compensation::RELEASE_STOCK);
        assert_eq!(
            action.status_after(OrderStatus::StockReserved),
            OrderStatus::Cancelling
        );
    }

    #[test]
    fn a_charge_that_times_out_cancels_and_first_learns_whether_it_captured() {
        let action = after(
            &order(OrderStatus::StockReserved),
            Outcome::TimedOut(Duration::from_millis(500)),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::PaymentTimeout);
        assert_eq!(
            cancellation.detail,
            "the payment did not answer within 500ms"
        );
        assert_eq!(
            cancellation.compensation,
            Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK
        );
    }

    // PAID -> CANCELLING.

    #[test]
    fn a_reservation_expired_before_its_commit_cancels_refunds_and_releases() {
        let action = after(
            &order(OrderStatus::Paid),
            Outcome::ReservationExpired("the stock reservation is EXPIRED".to_owned()),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::ReservationExpired);
        assert_eq!(
            cancellation.compensation,
            Compensation::REFUND_AND_RELEASE_STOCK
        );
        assert_eq!(
            action.status_after(OrderStatus::Paid),
            OrderStatus::Cancelling
        );
    }

    // CONFIRMED -> CANCELLING, at the customer's request.

    #[test]
    fn a_customer_may_cancel_a_confirmed_order_which_then_owes_a_refund_and_its_stock() {
        let cancellation = cancel_at_customer_request(OrderStatus::Confirmed).unwrap();
        assert_eq!(cancellation.reason, CancellationReason::CustomerRequest);
        assert_eq!(
            cancellation.compensation,
            Compensation::REFUND_AND_RELEASE_STOCK
        );
    }

    #[test]
    fn a_customer_cannot_cancel_an_order_that_is_not_confirmed() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::StockReserved,
            OrderStatus::Paid,
            OrderStatus::Cancelling,
            OrderStatus::Cancelled,
        ] {
            let why = cancel_at_customer_request(status).unwrap_err();
            assert!(why.contains(status.as_str()), "{why}");
        }
    }

    // CANCELLING -> CANCELLED: compensation, one piece at a time.

    #[test]
    fn compensation_learns_a_lost_charge_first_then_refunds_then_releases() {
        let all = Compensation {
            resolve_payment: true,
            refund: true,
            release_stock: true,
        };
        assert_eq!(plan(&cancelling(all)), Plan::Call(Step::ResolvePayment));
        assert_eq!(
            plan(&cancelling(Compensation::REFUND_AND_RELEASE_STOCK)),
            Plan::Call(Step::Refund)
        );
        assert_eq!(
            plan(&cancelling(Compensation::RELEASE_STOCK)),
            Plan::Call(Step::ReleaseStock)
        );
    }

    #[test]
    fn a_lost_charge_that_captured_is_then_owed_a_refund() {
        let payment_id = Uuid::now_v7();
        let action = after(
            &cancelling(Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK),
            Outcome::Charged {
                payment_id: Some(payment_id),
            },
        );
        assert_eq!(
            action,
            Action::Compensated {
                still_owed: Compensation::REFUND_AND_RELEASE_STOCK,
                refunded_minor: 0,
                payment_id: Some(payment_id),
            }
        );
    }

    #[test]
    fn a_lost_charge_that_failed_leaves_only_the_stock_to_release() {
        let action = after(
            &cancelling(Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK),
            Outcome::Declined("declined".to_owned()),
        );
        assert_eq!(
            action,
            Action::Compensated {
                still_owed: Compensation::RELEASE_STOCK,
                refunded_minor: 0,
                payment_id: None,
            }
        );
    }

    #[test]
    fn a_refund_records_the_refunded_total_and_leaves_the_stock_to_release() {
        let state = cancelling(Compensation::REFUND_AND_RELEASE_STOCK);
        let told = after(
            &state,
            Outcome::Refunded {
                refunded_total_minor: Some(2000),
            },
        );
        assert_eq!(
            told,
            Action::Compensated {
                still_owed: Compensation::RELEASE_STOCK,
                refunded_minor: 2000,
                payment_id: None,
            }
        );
        let untold = after(
            &state,
            Outcome::Refunded {
                refunded_total_minor: None,
            },
        );
        assert!(
            matches!(
                untold,
                Action::Compensated {
                    refunded_minor: TOTAL,
                    ..
                }
            ),
            "without a total the whole order was refunded: {untold:?}"
        );
    }

    #[test]
    fn a_refused_refund_means_nothing_to_give_back_and_compensation_goes_on() {
        let action = after(
            &cancelling(Compensation::REFUND_AND_RELEASE_STOCK),
            Outcome::NothingToRefund("the payment is failed".to_owned()),
        );
        assert_eq!(
            action,
            Action::Compensated {
                still_owed: Compensation::RELEASE_STOCK,
                refunded_minor: 0,
                payment_id: None,
            }
        );
    }

    #[test]
    fn releasing_the_stock_last_closes_the_order_as_cancelled() {
        let state = SagaState {
            refunded_minor: TOTAL,
            ..cancelling(Compensation::RELEASE_STOCK)
        };
        let action = after(&state, Outcome::StockReleased);
        assert_eq!(
            action,
            Action::Compensated {
                still_owed: Compensation::NOTHING,
                refunded_minor: TOTAL,
                payment_id: None,
            }
        );
        assert_eq!(
            action.status_after(OrderStatus::Cancelling),
            OrderStatus::Cancelled
        );
    }

    #[test]
    fn a_cancelling_order_that_owes_nothing_is_closed_without_a_call() {
        let Plan::Record(action) = plan(&cancelling(Compensation::NOTHING)) else {
            panic!("expected the order to be closed without a call");
        };
        assert_eq!(
            action.status_after(OrderStatus::Cancelling),
            OrderStatus::Cancelled
        );
    }

    // Retries.

    #[test]
    fn a_transient_failure_of_a_forward_step_is_retried_with_a_growing_delay() {
        let first = after(
            &order(OrderStatus::StockReserved),
            Outcome::Unavailable("unavailable: connection refused".to_owned()),
        );
        let second = after(
            &SagaState {
                attempts: 1,
                ..order(OrderStatus::StockReserved)
            },
            Outcome::Unavailable("unavailable: connection refused".to_owned()),
        );
        let (
            Action::Retry {
                after: first_delay,
                error,
            },
            Action::Retry {
                after: second_delay,
                ..
            },
        ) = (first, second)
        else {
            panic!("expected two retries");
        };
        assert_eq!(error, "unavailable: connection refused");
        assert_eq!(first_delay, settings().retry_delay(1));
        assert_eq!(second_delay, settings().retry_delay(2));
    }

    #[test]
    fn a_reserve_or_commit_that_times_out_is_retried_not_cancelled() {
        for status in [OrderStatus::Pending, OrderStatus::Paid] {
            let action = after(&order(status), Outcome::TimedOut(Duration::from_secs(2)));
            assert!(
                matches!(&action, Action::Retry { error, .. } if error == "no answer within 2s"),
                "{status}: {action:?}"
            );
        }
    }

    #[test]
    fn an_open_breaker_postpones_the_step_without_counting_an_attempt() {
        let last_attempt = SagaState {
            attempts: 2,
            ..order(OrderStatus::Pending)
        };
        let action = after(&last_attempt, Outcome::BreakerOpen(Duration::from_secs(5)));
        assert_eq!(
            action,
            Action::Postpone {
                after: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn a_reservation_whose_retries_are_exhausted_cancels_and_releases_whatever_was_held() {
        let action = after(
            &SagaState {
                attempts: 2,
                ..order(OrderStatus::Pending)
            },
            Outcome::TimedOut(Duration::from_secs(2)),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::Other);
        assert_eq!(cancellation.compensation, Compensation::RELEASE_STOCK);
        assert!(
            cancellation.detail.contains("after 3 attempts"),
            "{}",
            cancellation.detail
        );
    }

    #[test]
    fn a_charge_whose_retries_are_exhausted_cancels_and_learns_whether_it_captured() {
        let action = after(
            &SagaState {
                attempts: 2,
                ..order(OrderStatus::StockReserved)
            },
            Outcome::Unavailable("unavailable".to_owned()),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::PaymentTimeout);
        assert_eq!(
            cancellation.compensation,
            Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK
        );
    }

    #[test]
    fn a_commit_whose_retries_are_exhausted_cancels_refunds_and_releases() {
        let action = after(
            &SagaState {
                attempts: 2,
                ..order(OrderStatus::Paid)
            },
            Outcome::Unavailable("unavailable".to_owned()),
        );
        let cancellation = cancellation(&action);
        assert_eq!(cancellation.reason, CancellationReason::ReservationExpired);
        assert_eq!(
            cancellation.compensation,
            Compensation::REFUND_AND_RELEASE_STOCK
        );
    }

    #[test]
    fn compensation_is_retried_however_many_attempts_it_took() {
        for owed in [
            Compensation::RESOLVE_PAYMENT_AND_RELEASE_STOCK,
            Compensation::REFUND_AND_RELEASE_STOCK,
            Compensation::RELEASE_STOCK,
        ] {
            let state = SagaState {
                attempts: 50,
                ..cancelling(owed)
            };
            let action = after(&state, Outcome::Unavailable("unavailable".to_owned()));
            assert!(
                matches!(action, Action::Retry { after, .. } if after <= Duration::from_secs(30)),
                "{owed:?}: {action:?}"
            );
        }
    }

    #[test]
    fn an_answer_that_does_not_fit_the_step_counts_as_a_failed_attempt() {
        let action = after(&order(OrderStatus::Pending), Outcome::Committed);
        assert!(
            matches!(&action, Action::Retry { error, .. } if error.contains("reserve")),
            "{action:?}"
        );
    }
}
