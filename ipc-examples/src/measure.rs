//! Pinning, forking, timing, percentiles and baseline transports.
