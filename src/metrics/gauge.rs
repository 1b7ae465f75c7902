//! What is measured as a level rather than counted: [`Gauge`], and for each
//! its names and help text, the table every exporter reads. Each shard sets
//! its own value; readers sum them.

/// Every gauge beyond active connections. The discriminant indexes the cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gauge {
    /// Channel subscriptions of this instance's connections.
    Subscriptions,
    /// Channels with at least one subscriber on this instance.
    Channels,
}

/// Names and help of one gauge.
#[derive(Clone, Copy, Debug)]
pub struct GaugeInfo {
    /// PascalCase name: the CloudWatch metric name, and (lower-camel) the JSON key.
    pub name: &'static str,
    /// Prometheus series name.
    pub prometheus: &'static str,
    /// Prometheus `# HELP` text.
    pub help: &'static str,
}

impl Gauge {
    /// How many gauges there are.
    pub const COUNT: usize = 2;

    /// Every gauge, in index order.
    pub const ALL: [Gauge; Gauge::COUNT] = [Gauge::Subscriptions, Gauge::Channels];

    /// Position in the gauge arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Names and help.
    pub const fn info(self) -> GaugeInfo {
        match self {
            Gauge::Subscriptions => GaugeInfo {
                name: "Subscriptions",
                prometheus: "wss_subscriptions",
                help: "Channel subscriptions of this instance's connections.",
            },
            Gauge::Channels => GaugeInfo {
                name: "Channels",
                prometheus: "wss_channels",
                help: "Channels with at least one subscriber on this instance.",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_index_order() {
        for (i, g) in Gauge::ALL.iter().enumerate() {
            assert_eq!(g.index(), i);
            assert_eq!(format!("{g:?}"), g.info().name);
        }
    }
}
