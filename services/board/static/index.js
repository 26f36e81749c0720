"use strict";
LB.langLink(document.getElementById("lang"));
