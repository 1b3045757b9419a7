"""The neural spectrum: empirical NTK Gram matrices of any ``nn.Module`` (:func:`ntk`, with
the method chosen by a cost model) and their measures over training."""

from acthash.spectrum.ntk import (
    METHODS,
    OUTPUTS,
    MethodEstimate,
    NTKPlan,
    choose_method,
    ntk,
    ntk_loop,
)

__all__ = ["ntk", "ntk_loop", "METHODS", "OUTPUTS", "choose_method", "NTKPlan", "MethodEstimate"]
