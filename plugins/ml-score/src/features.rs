//! The fixed catalogue of per-flow features a model can ask for (to be
//! filled in by issue 4).
