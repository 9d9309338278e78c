'use strict';
/*
 * Run one step of a login scenario with a real Wafer client SDK and print ONE line of JSON.
 *
 *   node run.js <sdk> <step> <server-url> [--profile JSON] [--path /weapp/user]
 *               [--data JSON] [--file PATH] [--no-session]
 *
 * SDKs (tests/e2e/package.json installs them side by side):
 *   v1         wafer-client-sdk 0.8.4
 *   v2         wafer2-client-sdk 2.1.0
 *   v1-legacy  qcloud-weapp-client-sdk 0.7.4: X-WX-Code + X-WX-Encrypt-Data (the 2016
 *              getUserInfo `encryptData`, IV = key; the shim answers in that format)
 *   v2-113     wafer2-client-sdk 1.1.3 (alias wafer2-client-sdk-113): requestLogin, and a
 *              login() with the wx.checkSession short-cut
 *   v2-200     wafer2-client-sdk 2.0.0 (alias wafer2-client-sdk-200)
 *
 * Steps:
 *   login            qcloud.login(): wx.login + wx.getUserInfo, login with encrypted data
 *                    (v1 skips the server when a session is stored and wx.checkSession passes)
 *   login_code_only  v2 qcloud.loginWithCode() (v1 has no code-only login: "skipped")
 *   request_login    qcloud.request({login: true, url: <server>/weapp/user})
 *   request          qcloud.request({login: false, url: <server>/weapp/user}) with the stored session
 *   seed             wx.getUserInfo (no new wx.login) with --profile overrides, then
 *                    qcloud.request({login: false}) carrying X-WX-Encrypted-Data and X-WX-IV
 *   request_login_params  (v2-113) wx.login, then wx.getUserInfo, then
 *                    qcloud.requestLogin({loginParams: {code, encryptedData, iv}})
 *   request_login_button  (v2-113) the <button open-type="getUserInfo"> order: the user info
 *                    first (the button's e.detail), then wx.login, then qcloud.requestLogin
 *                    (SDKs without requestLogin: "skipped")
 *   profile          the fill-in form's submit: wx.request POST <server>/weapp/profile with
 *                    --data as JSON and the session headers built from what the SDK stored
 *                    (v1: X-WX-Id + X-WX-Skey, by the SDK's own buildSessionHeader; v2:
 *                    X-WX-Skey); --no-session sends none
 *   upload           chooseAvatar's temporary file: wx.uploadFile({name: "avatar",
 *                    filePath: --file, header: <the same session headers>}) to
 *                    <server>/weapp/avatar; result.data is the answer's text, as in wx
 *
 * The wx shim is configured by WAFER_E2E_* variables (see wx-shim.js). The output has:
 *   outcome   "success" | "fail" | "skipped" | "timeout" | "error"
 *   result    what the success callback got (login: the userInfo; request: {statusCode, data})
 *   error     what the fail callback got ({name, type, message, errMsg})
 *   storage   the wx storage afterwards; session: the SDK's stored session (or null)
 *   wx        the shim's journal: logins, getUserInfo calls, every wx.request on the wire
 */

const wx = require('./wx-shim');

const SESSION_STORAGE_KEY = 'weapp_session_F2C224D4-2BCE-4C64-AF9F-A6D872000D1A';
const STEP_TIMEOUT_MS = Number(process.env.WAFER_E2E_STEP_TIMEOUT_MS || 20000);
const SDK_PACKAGES = {
    v1: 'wafer-client-sdk',
    v2: 'wafer2-client-sdk',
    'v1-legacy': 'qcloud-weapp-client-sdk',
    'v2-113': 'wafer2-client-sdk-113',
    'v2-200': 'wafer2-client-sdk-200',
};
// SDKs that read wx.getUserInfo's 2016 `encryptData` (IV = key) instead of encryptedData + iv
const LEGACY_USERINFO_SDKS = ['v1-legacy'];

function parseArgs(argv) {
    const positional = [];
    const options = { profile: null, path: '/weapp/user', data: null, file: null, session: true };
    for (let i = 0; i < argv.length; i += 1) {
        const arg = argv[i];
        if (arg === '--profile') {
            options.profile = JSON.parse(argv[++i]);
        } else if (arg === '--path') {
            options.path = argv[++i];
        } else if (arg === '--data') {
            options.data = JSON.parse(argv[++i]);
        } else if (arg === '--file') {
            options.file = argv[++i];
        } else if (arg === '--no-session') {
            options.session = false;
        } else {
            positional.push(arg);
        }
    }
    if (positional.length !== 3) {
        const sdks = Object.keys(SDK_PACKAGES).join('|');
        throw new Error(`usage: node run.js <${sdks}> <step> <server-url> [--profile JSON] [--path P]`);
    }
    const [sdk, step, server] = positional;
    if (!SDK_PACKAGES[sdk]) throw new Error('unknown sdk ' + JSON.stringify(sdk));
    return Object.assign(options, { sdk, step, server: server.replace(/\/+$/, '') });
}

function describeError(error) {
    if (error === undefined || error === null) return { value: error === null ? null : 'undefined' };
    if (typeof error !== 'object') return { value: String(error) };
    return {
        name: error.constructor && error.constructor.name,
        type: error.type === undefined ? null : error.type,
        message: error.message === undefined ? null : error.message,
        errMsg: error.errMsg === undefined ? null : error.errMsg,
    };
}

function describeResponse(response) {
    if (!response || typeof response !== 'object') return response;
    return { statusCode: response.statusCode, data: response.data, header: response.header };
}

function wxCall(name) {
    return new Promise((resolve, reject) => wx[name]({ success: resolve, fail: reject }));
}

/**
 * {code, encryptedData, iv} as an app gathers them for requestLogin: wx.login then
 * wx.getUserInfo, or (userInfoFirst) the user info from the button first, then wx.login.
 */
async function loginParams(userInfoFirst) {
    let login;
    let info;
    if (userInfoFirst) {
        info = await wxCall('getUserInfo');
        login = await wxCall('login');
    } else {
        login = await wxCall('login');
        info = await wxCall('getUserInfo');
    }
    return { code: login.code, encryptedData: info.encryptedData, iv: info.iv };
}

/**
 * The Wafer session headers of the session the SDK stored, as an app builds them for the
 * calls the SDK does not make itself (wx.uploadFile): v1's own buildSessionHeader, v2's
 * X-WX-Skey from its stored session.
 */
function sessionHeader(args) {
    if (!args.session) return {};
    const root = SDK_PACKAGES[args.sdk];
    if (args.sdk.split('-')[0] === 'v1') return require(root + '/lib/request').buildSessionHeader();
    const session = require(root + '/lib/session').get();
    return session && session.skey ? { 'X-WX-Skey': session.skey } : {};
}

/** The step as a promise of {outcome, result?, error?, note?}. */
function runStep(qcloud, args) {
    const url = args.server + args.path;
    return new Promise((resolve) => {
        const success = (kind) => (value) => resolve({
            outcome: 'success',
            result: kind === 'response' ? describeResponse(value) : (value === undefined ? null : value),
        });
        const fail = (error) => resolve({ outcome: 'fail', error: describeError(error) });

        switch (args.step) {
        case 'login':
            qcloud.login({ success: success('userInfo'), fail });
            break;
        case 'login_code_only':
            if (typeof qcloud.loginWithCode !== 'function') {
                resolve({ outcome: 'skipped', note: `${args.sdk} has no code-only login` });
                break;
            }
            qcloud.loginWithCode({ success: success('userInfo'), fail });
            break;
        case 'request_login':
            qcloud.request({ url, login: true, success: success('response'), fail });
            break;
        case 'request':
            qcloud.request({ url, login: false, success: success('response'), fail });
            break;
        case 'seed':
            // Fresh encrypted user info under the CURRENT session_key: no wx.login here.
            wx.getUserInfo({
                success(info) {
                    qcloud.request({
                        url,
                        login: false,
                        header: { 'X-WX-Encrypted-Data': info.encryptedData, 'X-WX-IV': info.iv },
                        success: success('response'),
                        fail,
                    });
                },
                fail(error) {
                    resolve({ outcome: 'fail', error: describeError(error), note: 'wx.getUserInfo failed' });
                },
            });
            break;
        case 'request_login_params':
        case 'request_login_button':
            if (typeof qcloud.requestLogin !== 'function') {
                resolve({ outcome: 'skipped', note: `${args.sdk} has no requestLogin` });
                break;
            }
            // a wx failure is the step's failure; a throw inside requestLogin is an error
            loginParams(args.step === 'request_login_button').then(
                (params) => qcloud.requestLogin({ loginParams: params, success: success('none'), fail }),
                (error) => resolve({ outcome: 'fail', error: describeError(error), note: 'wx failed' }),
            );
            break;
        case 'profile':
            wx.request({
                url: args.server + '/weapp/profile',
                method: 'POST',
                header: sessionHeader(args),
                data: args.data,
                success: success('response'),
                fail,
            });
            break;
        case 'upload':
            wx.uploadFile({
                url: args.server + '/weapp/avatar',
                filePath: args.file,
                name: 'avatar',
                header: sessionHeader(args),
                success: success('response'),
                fail,
            });
            break;
        default:
            resolve({ outcome: 'error', error: { message: 'unknown step ' + JSON.stringify(args.step) } });
        }
    });
}

function emit(report, code) {
    process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(code));
}

async function main() {
    let args;
    try {
        args = parseArgs(process.argv.slice(2));
    } catch (error) {
        emit({ outcome: 'error', error: { message: error.message } }, 2);
        return;
    }
    if (args.profile) wx.__config.profile = args.profile;
    if (LEGACY_USERINFO_SDKS.indexOf(args.sdk) !== -1) wx.__config.legacyUserInfo = true;

    const qcloud = require(SDK_PACKAGES[args.sdk]);
    qcloud.setLoginUrl(args.server + '/weapp/login');

    let timer;
    const timeout = new Promise((resolve) => {
        timer = setTimeout(() => resolve({
            outcome: 'timeout',
            error: { message: `no callback within ${STEP_TIMEOUT_MS} ms` },
        }), STEP_TIMEOUT_MS);
    });
    let result;
    try {
        result = await Promise.race([runStep(qcloud, args), timeout]);
    } catch (error) {
        result = { outcome: 'error', error: Object.assign(describeError(error), { stack: error.stack }) };
    }
    clearTimeout(timer);

    const storage = wx.__storage;
    emit(Object.assign({ sdk: args.sdk, step: args.step }, result, {
        storage,
        session: storage[SESSION_STORAGE_KEY] || null,
        wx: wx.__journal,
    }), 0);
}

process.on('unhandledRejection', (error) => {
    emit({ outcome: 'error', error: Object.assign(describeError(error), { stack: error && error.stack }) }, 1);
});
process.on('uncaughtException', (error) => {
    emit({ outcome: 'error', error: Object.assign(describeError(error), { stack: error && error.stack }) }, 1);
});

main();
