"""scikit-learn's estimator checks over every estimator skmlp exports."""

import inspect

import skmlp
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks


def _all_estimators():
    return [
        obj()
        for name in skmlp.__all__
        if inspect.isclass(obj := getattr(skmlp, name))
        and issubclass(obj, BaseEstimator)
    ]


def test_all_estimators_found():
    names = {type(est).__name__ for est in _all_estimators()}
    assert {"MLPClassifier", "MLPRegressor"} <= names


@parametrize_with_checks(_all_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
