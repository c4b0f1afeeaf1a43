//! placeholder until the captures land
