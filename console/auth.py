"""Placeholder blueprint; replaced by its owner."""

from flask import Blueprint

auth = Blueprint("auth", __name__)
