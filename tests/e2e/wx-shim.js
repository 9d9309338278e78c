'use strict';
/*
 * A minimal stand-in for the mini-program `wx` object, enough for the Wafer client SDKs
 * (wafer-client-sdk 0.8.4, wafer2-client-sdk 2.1.0, 2.0.0 and 1.1.3, and the legacy
 * qcloud-weapp-client-sdk 0.7.4) to run in Node.
 *
 * Configured by environment variables:
 *   WAFER_E2E_FAKE_URL       base URL of the fake WeChat (required for wx.login / wx.getUserInfo)
 *   WAFER_E2E_APPID          the mini-program AppID the fake knows
 *   WAFER_E2E_USER           the simulated WeChat user's handle (default "alice")
 *   WAFER_E2E_STORAGE        optional JSON file: storage is loaded from it at start and
 *                            saved to it after every change (a scenario can span processes)
 *   WAFER_E2E_PROFILE        optional JSON object of profile overrides for wx.getUserInfo
 *                            (e.g. {"nickName": "Bob"})
 *   WAFER_E2E_ROTATE         "0" makes wx.login keep the user's session_key (default: rotate)
 *   WAFER_E2E_CHECK_SESSION  "fail" makes wx.checkSession fail (default: succeed)
 *   WAFER_E2E_USERINFO       "legacy" makes wx.getUserInfo answer in the 2016 format:
 *                            `encryptData` (IV = key) instead of `encryptedData` + `iv`
 *                            (run.js sets this itself for the legacy SDK)
 *
 * Everything the shim does is recorded in `wx.__journal` (logins, user-info calls, and
 * every wx.request and wx.uploadFile with what was sent and what came back), so a test can
 * check the wire.
 */

const http = require('http');
const https = require('https');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const querystring = require('querystring');

const env = process.env;

const config = {
    fakeUrl: (env.WAFER_E2E_FAKE_URL || '').replace(/\/+$/, ''),
    appid: env.WAFER_E2E_APPID || '',
    user: env.WAFER_E2E_USER || 'alice',
    storageFile: env.WAFER_E2E_STORAGE || '',
    profile: env.WAFER_E2E_PROFILE ? JSON.parse(env.WAFER_E2E_PROFILE) : {},
    rotate: env.WAFER_E2E_ROTATE !== '0',
    checkSessionFails: env.WAFER_E2E_CHECK_SESSION === 'fail',
    legacyUserInfo: env.WAFER_E2E_USERINFO === 'legacy',
};

const journal = { logins: [], userInfo: [], requests: [], checkSession: [] };

// ------------------------------------------------------------------ callbacks

function finish(options, ok, result) {
    options = options || {};
    // wx calls its callbacks asynchronously; so do we (never inside the caller's stack).
    setImmediate(() => {
        const callback = ok ? options.success : options.fail;
        if (typeof callback === 'function') callback(result);
        if (typeof options.complete === 'function') options.complete(result);
    });
}

// ------------------------------------------------------------------ raw HTTP

/** One HTTP exchange; resolves {statusCode, header, body} or rejects on a network error. */
function httpExchange(method, url, headers, body) {
    return new Promise((resolve, reject) => {
        let target;
        try {
            target = new URL(url);
        } catch (e) {
            reject(new Error('invalid url: ' + url));
            return;
        }
        const transport = target.protocol === 'https:' ? https : http;
        const request = transport.request(target, { method, headers, agent: false }, (response) => {
            const chunks = [];
            response.on('data', (chunk) => chunks.push(chunk));
            response.on('end', () => resolve({
                statusCode: response.statusCode,
                header: response.headers,
                body: Buffer.concat(chunks).toString('utf8'),
            }));
            response.on('error', reject);
        });
        request.setTimeout(20000, () => request.destroy(new Error('timeout')));
        request.on('error', reject);
        const expects = Object.keys(headers || {}).some(
            (k) => k.toLowerCase() === 'expect' && String(headers[k]).toLowerCase() === '100-continue');
        if (expects) {
            // The body goes only after the server's 100 Continue: a server refusing the
            // upload unread (413) answers at once, and the client sends nothing more.
            request.on('continue', () => {
                if (!request.writableEnded) request.end(body);
            });
            request.flushHeaders();
            return;
        }
        if (body !== undefined && body !== null) request.write(body);
        request.end();
    });
}

/**
 * A multipart/form-data body as wx.uploadFile sends it: the extra `formData` fields, then
 * the file under `name`, with its base name as the filename.
 */
function multipartBody(name, filePath, formData) {
    const boundary = '----WaferE2E' + crypto.randomBytes(12).toString('hex');
    const parts = [];
    Object.keys(formData || {}).forEach((field) => {
        parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"`
            + `\r\n\r\n${formData[field]}\r\n`));
    });
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; `
        + `filename="${path.basename(filePath)}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    parts.push(fs.readFileSync(filePath));
    parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
    return { boundary, body: Buffer.concat(parts) };
}

/** POST JSON to the fake WeChat's control API; resolves the parsed answer. */
async function fakeCall(path, payload) {
    if (!config.fakeUrl) throw new Error('WAFER_E2E_FAKE_URL is not set');
    const body = JSON.stringify(payload);
    const answer = await httpExchange('POST', config.fakeUrl + path, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
    }, body);
    let data;
    try {
        data = JSON.parse(answer.body);
    } catch (e) {
        throw new Error(`fake WeChat ${path} answered a non-JSON body (${answer.statusCode})`);
    }
    if (answer.statusCode !== 200) {
        throw new Error(`fake WeChat ${path} answered ${answer.statusCode}: ${answer.body}`);
    }
    return data;
}

// ------------------------------------------------------------------ storage

let storage = {};

function loadStorage() {
    if (!config.storageFile) return;
    let text;
    try {
        text = fs.readFileSync(config.storageFile, 'utf8');
    } catch (e) {
        if (e.code === 'ENOENT') return;
        throw e;
    }
    storage = text.trim() ? JSON.parse(text) : {};
}

function saveStorage() {
    if (!config.storageFile) return;
    const temp = config.storageFile + '.tmp';
    fs.writeFileSync(temp, JSON.stringify(storage));
    fs.renameSync(temp, config.storageFile);
}

// Values go through JSON like the real storage: callers never share objects with it.
function copy(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

loadStorage();

// ------------------------------------------------------------------ wx

const noopApi = (options) => finish(options, true, { errMsg: 'ok' });

const wx = {
    login(options) {
        fakeCall('/_fake/login', { appid: config.appid, user: config.user, rotate: config.rotate })
            .then((answer) => {
                journal.logins.push({ code: answer.code, openid: answer.openid });
                finish(options, true, { code: answer.code, errMsg: 'login:ok' });
            })
            .catch((error) => {
                journal.logins.push({ error: error.message });
                finish(options, false, { errMsg: 'login:fail ' + error.message });
            });
    },

    getUserInfo(options) {
        const payload = Object.assign({}, config.profile, { appid: config.appid, user: config.user });
        if (config.legacyUserInfo) payload.legacy = true;
        fakeCall('/_fake/userinfo', payload)
            .then((answer) => {
                journal.userInfo.push({ userInfo: answer.userInfo });
                const result = {
                    userInfo: answer.userInfo,
                    rawData: answer.rawData,
                    signature: answer.signature,
                };
                // the 2016 format has `encryptData` only; the current one `encryptedData` + `iv`
                ['encryptData', 'encryptedData', 'iv'].forEach((name) => {
                    if (answer[name] !== undefined) result[name] = answer[name];
                });
                result.errMsg = 'getUserInfo:ok';
                finish(options, true, result);
            })
            .catch((error) => {
                journal.userInfo.push({ error: error.message });
                finish(options, false, { errMsg: 'getUserInfo:fail ' + error.message });
            });
    },

    checkSession(options) {
        journal.checkSession.push(config.checkSessionFails ? 'fail' : 'ok');
        if (config.checkSessionFails) {
            finish(options, false, { errMsg: 'checkSession:fail session expired' });
        } else {
            finish(options, true, { errMsg: 'checkSession:ok' });
        }
    },

    request(options) {
        options = options || {};
        const method = String(options.method || 'GET').toUpperCase();
        const header = Object.assign({}, options.header || {});
        let url = options.url;
        let body = null;
        const data = options.data;

        const hasContentType = Object.keys(header).some((k) => k.toLowerCase() === 'content-type');
        if (!hasContentType) header['content-type'] = 'application/json';

        if (data !== undefined && data !== null) {
            if (method === 'GET') {
                const query = typeof data === 'string' ? data : querystring.stringify(data);
                if (query) url += (url.indexOf('?') === -1 ? '?' : '&') + query;
            } else if (typeof data === 'string' || Buffer.isBuffer(data)) {
                body = data;
            } else {
                const type = Object.keys(header)
                    .filter((k) => k.toLowerCase() === 'content-type')
                    .map((k) => String(header[k]).toLowerCase())[0];
                body = type.indexOf('x-www-form-urlencoded') !== -1
                    ? querystring.stringify(data) : JSON.stringify(data);
            }
        }
        if (body !== null) header['content-length'] = Buffer.byteLength(body);

        const entry = { method, url, header: copy(header) };
        journal.requests.push(entry);

        httpExchange(method, url, header, body)
            .then((answer) => {
                let parsed = answer.body;
                if (options.dataType === undefined || options.dataType === 'json') {
                    try {
                        parsed = JSON.parse(answer.body);
                    } catch (e) {
                        parsed = answer.body;
                    }
                }
                entry.statusCode = answer.statusCode;
                entry.responseHeader = answer.header;
                entry.rawBody = answer.body;
                finish(options, true, {
                    data: parsed,
                    statusCode: answer.statusCode,
                    header: answer.header,
                    errMsg: 'request:ok',
                });
            })
            .catch((error) => {
                entry.error = error.message;
                finish(options, false, { errMsg: 'request:fail ' + error.message });
            });
    },

    /** wx.uploadFile: the file at `filePath` as multipart/form-data over real HTTP, with the
     * caller's `header` (the Wafer session headers); `data` comes back as a string. */
    uploadFile(options) {
        options = options || {};
        const header = Object.assign({}, options.header || {});
        const entry = { method: 'POST', url: options.url, header: copy(header), upload: options.name };
        journal.requests.push(entry);
        let built;
        try {
            built = multipartBody(options.name, options.filePath, options.formData);
        } catch (error) {
            entry.error = error.message;
            finish(options, false, { errMsg: 'uploadFile:fail ' + error.message });
            return;
        }
        header['content-type'] = 'multipart/form-data; boundary=' + built.boundary;
        header['content-length'] = built.body.length;
        header.expect = '100-continue';
        entry.size = built.body.length;
        httpExchange('POST', options.url, header, built.body)
            .then((answer) => {
                entry.statusCode = answer.statusCode;
                entry.responseHeader = answer.header;
                entry.rawBody = answer.body;
                finish(options, true, {
                    data: answer.body,
                    statusCode: answer.statusCode,
                    errMsg: 'uploadFile:ok',
                });
            })
            .catch((error) => {
                entry.error = error.message;
                finish(options, false, { errMsg: 'uploadFile:fail ' + error.message });
            });
    },

    getStorageSync(key) {
        return Object.prototype.hasOwnProperty.call(storage, key) ? copy(storage[key]) : '';
    },

    setStorageSync(key, value) {
        storage[key] = copy(value);
        saveStorage();
    },

    removeStorageSync(key) {
        delete storage[key];
        saveStorage();
    },

    clearStorageSync() {
        storage = {};
        saveStorage();
    },

    // UI and sockets: the SDKs' tunnel module registers socket listeners when it loads.
    showModal: noopApi,
    showToast: noopApi,
    hideToast: noopApi,
    showLoading: noopApi,
    hideLoading: noopApi,
    onSocketOpen() {},
    onSocketClose() {},
    onSocketMessage() {},
    onSocketError() {},
    connectSocket: (options) => finish(options, false, { errMsg: 'connectSocket:fail not supported' }),
    sendSocketMessage: (options) => finish(options, false, { errMsg: 'sendSocketMessage:fail' }),
    closeSocket: noopApi,
};

Object.defineProperty(wx, '__journal', { value: journal, enumerable: false });
Object.defineProperty(wx, '__config', { value: config, enumerable: false });
Object.defineProperty(wx, '__storage', { get: () => copy(storage), enumerable: false });

global.wx = wx;
module.exports = wx;
