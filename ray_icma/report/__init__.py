"""The pipeline's run report: one self-contained HTML page with embedded PNG plots."""
from ray_icma.report.html_report import SECTION_IDS, ReportData, write_report
from ray_icma.report.plots import loss_points, plot_losses, png_data_uri

__all__ = ["SECTION_IDS", "ReportData", "loss_points", "plot_losses", "png_data_uri", "write_report"]
