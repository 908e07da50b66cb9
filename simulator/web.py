"""Placeholder blueprint; replaced by its owner."""

from flask import Blueprint

simulator = Blueprint("simulator", __name__)
