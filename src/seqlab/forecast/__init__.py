"""Forecasting: the local (one fit per series) methods and what they share.

Every classical forecaster is a :class:`LocalMethod`: ``fit(y, m)`` on one series returns a
:class:`LocalFit`, whose ``forecast(h, levels)`` gives the point forecast and, where the method
has them, model-based prediction intervals. The ``forecasting`` task and the classical family
that fits a method per series of a panel (in parallel) are built on this contract.
"""

from seqlab.forecast.local import Forecast, LocalFit, LocalMethod, check_series

__all__ = ["Forecast", "LocalFit", "LocalMethod", "check_series"]
