// SPDX-License-Identifier: MPL-2.0

mod app;
mod flows;
mod harness;
mod storms;
mod units;
