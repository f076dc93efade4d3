// SPDX-License-Identifier: MPL-2.0

mod flows;
mod harness;
mod units;
