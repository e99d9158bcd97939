"""Predictive CLV model core (pure: numpy, scipy, polars, stdlib only).

* ``rfm`` — BTYD RFM summary per user and calibration/holdout split;
* ``bg_nbd`` — BG/NBD purchase model (Fader, Hardie & Lee 2005);
* ``gamma_gamma`` — Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Hardie & Fader 2013);
* ``clv`` — discounted expected purchases, predicted CLV per user, value of a new customer;
* ``simulate`` — simulators of the two models (tests, sample data);
* ``fitting`` — ``FitResult``, ``ModelInputError`` and the shared optimiser loop.
"""
