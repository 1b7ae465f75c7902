//! One order per channel: at the end of a run, every subscription hands in
//! how many counted publications it received and a digest of their arrival
//! order (see `subs`). Within a channel, the subscriptions that received the
//! most publications must all carry the same digest; the digest most of them
//! carry is taken as the channel's order and each other one is a violation.
//!
//! Subscriptions that missed publications are not compared (their order
//! cannot be told from a digest, and the loss is already reported as
//! `missing`); with nothing missing, every subscription is compared.

/// What one subscription hands in.
#[derive(Debug, Clone, Copy)]
pub struct SubResult {
    /// Channel index.
    pub channel: u32,
    /// Counted publications received, duplicates excluded.
    pub count: u64,
    /// Digest of their arrival order.
    pub digest: u64,
}

/// The outcome of the check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// Subscriptions compared (those with the channel's highest count, in
    /// channels with at least one counted publication).
    pub compared: u64,
    /// Compared subscriptions whose order differs from the channel's.
    pub violations: u64,
    /// Channels with at least one violation.
    pub channels_violated: u64,
    /// Subscriptions not compared because they received fewer
    /// publications than others of their channel.
    pub incomplete: u64,
}

/// Compares the subscriptions of each channel.
pub fn check(mut results: Vec<SubResult>) -> OrderCheck {
    results.sort_unstable_by_key(|r| (r.channel, std::cmp::Reverse(r.count), r.digest));
    let mut out = OrderCheck::default();
    for group in results.chunk_by(|a, b| a.channel == b.channel) {
        // Sorted by count, highest first, then by digest.
        let top = group[0].count;
        if top == 0 {
            continue;
        }
        let full = group.iter().take_while(|r| r.count == top).count();
        out.incomplete += (group.len() - full) as u64;
        out.compared += full as u64;
        let majority = group[..full]
            .chunk_by(|a, b| a.digest == b.digest)
            .map(<[SubResult]>::len)
            .max()
            .unwrap_or(0);
        let violations = (full - majority) as u64;
        out.violations += violations;
        out.channels_violated += u64::from(violations > 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(channel: u32, count: u64, digest: u64) -> SubResult {
        SubResult {
            channel,
            count,
            digest,
        }
    }

    #[test]
    fn one_order_per_channel_passes() {
        let c = check(vec![
            r(0, 5, 9),
            r(1, 3, 4),
            r(0, 5, 9),
            r(1, 3, 4),
            r(2, 0, 0),
        ]);
        assert_eq!(
            c,
            OrderCheck {
                compared: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_different_order_is_a_violation_and_short_ones_are_not_compared() {
        let c = check(vec![
            r(0, 5, 9),
            r(0, 5, 9),
            r(0, 5, 8),
            r(0, 4, 1),
            r(1, 2, 1),
            r(1, 2, 2),
            r(1, 2, 3),
        ]);
        assert_eq!(c.compared, 6);
        assert_eq!(c.incomplete, 1);
        assert_eq!(c.violations, 1 + 2);
        assert_eq!(c.channels_violated, 2);
    }
}
