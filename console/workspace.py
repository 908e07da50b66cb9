"""Placeholder blueprint; replaced by its owner."""

from flask import Blueprint

workspace = Blueprint("workspace", __name__)
