"""The neural spectrum: empirical NTK Gram matrices of any ``nn.Module`` (:func:`ntk`, with
the method chosen by a cost model, :mod:`~acthash.spectrum.plan`) and their measures over
training (:mod:`~acthash.spectrum.measures`)."""

from acthash.spectrum.measures import (
    STUDY_OPTIMIZERS,
    STUDY_SCHEDULES,
    SpectrumTrace,
    eig_desc,
    energy_fraction,
    kernel_alignment,
    track_spectrum,
)
from acthash.spectrum.ntk import (
    METHODS,
    OUTPUTS,
    MethodEstimate,
    NTKPlan,
    choose_method,
    ntk,
    ntk_loop,
)

__all__ = ["ntk", "ntk_loop", "METHODS", "OUTPUTS", "choose_method", "NTKPlan", "MethodEstimate",
           "SpectrumTrace", "eig_desc", "energy_fraction", "kernel_alignment", "track_spectrum",
           "STUDY_OPTIMIZERS", "STUDY_SCHEDULES"]
