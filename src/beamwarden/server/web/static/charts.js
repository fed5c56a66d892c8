// Beamwarden dashboard charts (uPlot). Filled in by the charts work.
"use strict";
