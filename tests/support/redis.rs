//! Redis test servers (standalone and Cluster) on free ports.
